"""Shared test helpers, imported as ``test.helpers.<module>`` from every tier.

- ``paths``: REPO (the repository root), TEST_DATA (``test/data``).
- ``waiting``: ``wait_until`` / ``poll`` -- the one polling loop of the suite.
- ``ros``: ``spin_until``, ``call_trigger``, ``NodeProcess`` (rclpy is imported lazily).
- ``datagen``, ``models``, ``rotation_cases``, ``sim``, ``tiny_vlm``, ``policy_probe``:
  data, model, rotation and sim fixtures shared by several test files.
- ``calibration``, ``executor``, ``flow``, ``launch_files``, ``lerobot``, ``paligemma``,
  ``policy_node``, ``recorder``, ``teleop``, ``verifier``, ``vlm_training``: what a test module
  shares with the tests of other files (constants, helpers, harnesses, fixtures imported by name).

Test modules never import from each other: a piece two test files need lives here.
"""
