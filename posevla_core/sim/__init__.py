"""MuJoCo simulation of a Franka Panda table-top scene (no rclpy here).

- ``assets``: Panda URDF (pybullet wheel) with absolute mesh paths + ``panda_grasptarget``.
- ``scene``: the MJCF scene (robot, table, objects, bins, lights, RGB-D camera, actuators).
- ``tasks``: language tasks, layouts, success predicates.
- ``controller``: joint trajectory follower (like ros2_control's joint_trajectory_controller).
- ``env``: ``SimEnv`` (reset / step / render / camera pose / grounding labels).
- ``expert``: scripted keyframe expert.
- ``gl``: ``import_mujoco()``, the one place mujoco is imported: it first picks the OpenGL
  backend (EGL / OSMesa when headless), which MuJoCo reads only at import.
Heavy imports (mujoco) happen in the submodules when used, not here (kinematics imports
``assets`` without needing a renderer).
"""
