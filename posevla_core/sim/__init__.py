"""Simulation behind sim_node (no rclpy here).

- ``mujoco``: our Franka Panda table-top scene: ``assets`` (Panda URDF from the pybullet wheel),
  ``scene`` (the MJCF: robot, table, objects, bins, lights, RGB-D camera), ``env`` (``SimEnv``:
  reset / step / render / camera pose / grounding labels), ``look``, ``options``, ``randomize``.
- ``robosuite``: robosuite tasks behind SimEnv's interface.
- ``camera``: where the camera stands (``CameraPlacement``), shared by both simulators.
- ``tasks``: language tasks, layouts, success predicates.
- ``controller``: joint trajectory follower (like ros2_control's joint_trajectory_controller).
- ``demonstrator``: the scripted keyframe demonstrator that writes training demos.
- ``factory``: ``make_env``, the one place the ``sim`` option is parsed.
- ``gl``: ``import_mujoco()``, the one place mujoco is imported: it first picks the OpenGL
  backend (EGL / OSMesa when headless), which MuJoCo reads only at import.
Heavy imports (mujoco) happen in the submodules when used, not here (kinematics imports
``mujoco.assets`` without needing a renderer).
"""
