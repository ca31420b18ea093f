"""SimEnv: the MuJoCo Panda table-top scene behind the sim node (no rclpy).

Why one module: SimEnv is one object over one MjModel / MjData pair; its reset, stepping,
rendering and labels all read the same handles.

    env = SimEnv(width=224, height=224)
    spec = env.reset(seed, task="pick")        # EpisodeSpec(instruction, task, target, container, seed)
    env.send_arm_trajectory(names, times, positions)      # replaces the running one
    env.send_gripper_trajectory(names, times, positions)  # finger joint positions (m)
    env.step(dt)                                # advances sim time by ~dt
    rgb, depth, K = env.render()                # HxWx3 uint8, HxW float32 meters, 3x3
    T = env.camera_pose_in_base()               # 4x4 pose of the OPTICAL frame (x right, y down, z fwd)
    SimEnv(camera=CameraPlacement(orbit=Orbit(azimuth_deg=45), fov_deg=60))   # a placed camera (sim/camera.py)
    SimEnv(depth_noise=DepthNoise(), objects=8, object_scale=1.3)  # a noisy sensor, 8 objects, 1.3x size
    env.success(); env.grounding_labels()       # (category, (u, v) in [0,1], Pose in camera frame)
    env.close()

Base frame = panda_link0 = MuJoCo world. K follows the ROS / OpenCV convention (pixel
centers at integer coordinates, cx = (W-1)/2); normalized box centers are (u+0.5)/W.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.spatial.transform import Rotation

from posevla_core.calibration.board import CharucoBoardSpec
from posevla_core.calibration.hand_eye import MODES as CALIBRATION_MODES
from posevla_core.geometry import se3
from posevla_core.poses import Pose
from posevla_core.sim import tasks
from posevla_core.sim.camera import CAMERA_NOMINAL_POS, CAMERA_NOMINAL_TARGET, OPTICAL_FROM_MJCAM, CameraPlacement
from posevla_core.sim.controller import TrajectoryFollower
from posevla_core.sim.demonstrator import default_kinematics
from posevla_core.sim.gl import import_mujoco
from posevla_core.sim.mujoco import scene
from posevla_core.sim.mujoco.calibration_rig import board_texture
from posevla_core.sim.tasks import EpisodeSpec

PARK_Z = -0.7
CONTROL_DT = 0.01   # s: joint setpoint update period of the simulated controllers (100 Hz)


def pinhole_K(fovy_deg: float, width: int, height: int) -> np.ndarray:
    """K of a MuJoCo camera (square pixels, vertical field of view ``fovy_deg``) in the ROS /
    OpenCV convention: pixel centers at integer coordinates, so cx = (W-1)/2."""
    f = 0.5 * height / math.tan(math.radians(float(fovy_deg)) / 2)
    return np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1.0]])


def render_rgbd(renderer, model, data, camera, scene_option=None) -> tuple[np.ndarray, np.ndarray]:
    """(rgb HxWx3 uint8, depth HxW float32 meters along the optical axis, NaN = no reading:
    nothing hit, or the far plane) of ``camera`` with a ``mujoco.Renderer`` (``scene_option``:
    an MjvOption, e.g. which geom groups are drawn)."""
    renderer.disable_depth_rendering()
    renderer.update_scene(data, camera=camera, scene_option=scene_option)
    rgb = renderer.render().copy()
    renderer.enable_depth_rendering()
    renderer.update_scene(data, camera=camera, scene_option=scene_option)
    depth = renderer.render().astype(np.float32).copy()
    renderer.disable_depth_rendering()
    far = model.stat.extent * model.vis.map.zfar
    depth[(depth <= 0) | (depth >= 0.99 * far)] = np.nan
    return rgb, depth


def geom_mask(env, geoms) -> np.ndarray:
    """(H, W) bool: the pixels of ``env``'s camera that MuJoCo's segmentation render gives to
    ``geoms`` (geom ids), in the env's current state and image size (our sim or robosuite's)."""
    mj = env._mj
    r = mj.Renderer(env.model, env.height, env.width)
    try:
        r.enable_segmentation_rendering()
        r.update_scene(env.data, camera=env._cam, scene_option=env.scene_option)
        seg = r.render()
    finally:
        r.close()
    return (seg[..., 1] == int(mj.mjtObj.mjOBJ_GEOM)) & np.isin(seg[..., 0], list(geoms))


def body_mask(env, name: str) -> np.ndarray:
    """``geom_mask`` of body ``name``'s own geoms (an object of the scene)."""
    mj, m = env._mj, env.model
    body = mj.mj_name2id(m, mj.mjtObj.mjOBJ_BODY, name)
    return geom_mask(env, [g for g in range(m.ngeom) if m.geom_bodyid[g] == body])




class SimEnvBase:
    """What SimEnv and the robosuite env (posevla_core.sim.robosuite.env) share: the clock,
    trajectories into the arm / gripper followers, the lazily made renderer and its release,
    projection and grounding labels. A subclass sets ``_mj`` (the mujoco module), ``model``,
    ``data``, ``width``, ``height``, ``_renderer = None``, ``arm`` / ``gripper``
    (TrajectoryFollower), ``finger_joint_names``, and offers ``camera_pose_in_base()``,
    ``intrinsics()``, ``object_pose(name)``, ``object_extent(name)``, ``spec.target``."""

    @property
    def time(self) -> float:
        return float(self.data.time)

    def send_arm_trajectory(self, names, times, positions, velocities=None, t_start: float | None = None) -> None:
        self.arm.set_trajectory(self.time, list(names), times, positions, velocities, t_start)

    def send_gripper_trajectory(self, names, times, positions, velocities=None) -> None:
        """Finger joint positions (m, each in [0, 0.04] open). Naming only one finger moves both
        (mimic joint)."""
        names = list(names)
        P = np.asarray(positions, dtype=float).reshape(len(times), len(names))
        if len(names) == 1 and names[0] in self.finger_joint_names:
            names, P = list(self.finger_joint_names), np.repeat(P, 2, axis=1)
        self.gripper.set_trajectory(self.time, names, times, np.clip(P, scene.FINGER_CLOSED, scene.FINGER_OPEN))

    def kinematics(self):
        """RobotKinematics of the simulated arm (the scripted expert's IK): our Panda URDF."""

        return default_kinematics()

    scene_option = None   # MjvOption of the rendered frames (None: MuJoCo's defaults)

    def _render_rgbd(self, camera) -> tuple[np.ndarray, np.ndarray]:
        if self._renderer is None:
            self._renderer = self._mj.Renderer(self.model, self.height, self.width)
        return render_rgbd(self._renderer, self.model, self.data, camera, self.scene_option)

    def close(self) -> None:
        if self._renderer is not None:
            try:
                self._renderer.close()
            finally:
                self._renderer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    def project(self, p_base) -> tuple[float, float, float]:
        """(u, v) normalized in [0, 1] (may fall outside) and depth z of a base-frame point."""
        pc = se3.transform_points(se3.inv_T(self.camera_pose_in_base()), np.asarray(p_base, float))
        K = self.intrinsics()
        u = K[0, 0] * pc[0] / pc[2] + K[0, 2]
        v = K[1, 1] * pc[1] / pc[2] + K[1, 2]
        return (u + 0.5) / self.width, (v + 0.5) / self.height, float(pc[2])

    def category_of(self, name: str) -> str:
        """The category an object is labeled with ('red_cube' -> 'red cube')."""
        return tasks.category_of(name)

    def gripper_opening(self) -> float:
        """Measured gripper opening, 0 closed .. 1 open (what demos record as ``observation.gripper``)."""
        return float(self.finger_q().mean() / scene.FINGER_OPEN)

    # ---- what the scripted expert (sim/expert.py) asks of a scene
    def grasp_point(self, name: str) -> tuple[np.ndarray, float, float | None]:
        """How the expert grasps ``name`` top-down: (base-frame point, a finger-axis yaw, the yaw
        period of equivalent grasps: pi/2 across a cube's faces, None for a round object, whose
        grasp yaw is free). Here: the object's origin and yaw."""
        T = self.object_pose(name)
        return T[:3, 3].copy(), math.atan2(T[1, 0], T[0, 0]), (math.pi / 2 if name.endswith("_cube") else None)

    def places_onto(self, container: str) -> bool:
        """True: the held object is set down just above ``container``'s top (an object, a peg);
        False: dropped into it from above its walls (a bin)."""
        return False

    def place_turn(self, name: str, container: str) -> tuple[float, float | None]:
        """(yaw in rad the held ``name`` turns by between grasp and release to fit ``container``, the
        period of turns that fit as well or None): here none is needed, (0, None)."""
        return 0.0, None

    def labeled_names(self) -> list[str]:
        """Everything in this episode that ``object_labels`` can label (objects and bins)."""
        return list(self.spec.objects) + list(self.spec.bins) if self.spec else []

    def object_labels(self, name: str | None = None) -> dict:
        """Grounding labels of ``name`` (default: the episode's target), camera optical frame:
        category, ``pose`` (7: xyz + qxyzw) of the center of its 3D box, ``size`` (3, meters,
        along its own axes), ``box_xyxy`` (the projected 3D box, normalized image coords) and
        ``box_uv`` (the projected 3D box center)."""
        name = name or self.spec.target
        size, offset = self.object_extent(name)
        T = self.object_pose(name).copy()
        T[:3, 3] = T[:3, 3] + T[:3, :3] @ offset
        corners = np.array([T[:3, 3] + T[:3, :3] @ (size / 2 * [sx, sy, sz])
                            for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
        uv = np.array([self.project(c)[:2] for c in corners])
        u, v, _ = self.project(T[:3, 3])
        T_cam = se3.inv_T(self.camera_pose_in_base()) @ T
        return {"category": self.category_of(name), "box_uv": np.array([u, v]),
                "box_xyxy": np.r_[uv.min(0), uv.max(0)], "object_pose": se3.T_to_pose7(T_cam[None])[0],
                "object_size": size}

    def grounding_labels(self, obj: str | None = None) -> tuple[str, tuple[float, float], Pose]:
        """(category, (u, v) normalized box center = projected object center, object Pose in
        the camera optical frame) of ``obj`` (default: the episode's target)."""
        name = obj or self.spec.target
        T_base_obj = self.object_pose(name)
        u, v, _ = self.project(T_base_obj[:3, 3])
        T_cam_obj = se3.inv_T(self.camera_pose_in_base()) @ T_base_obj
        return self.category_of(name), (float(u), float(v)), Pose.from_matrix(T_cam_obj)


class SimEnv(SimEnvBase):
    table_z = 0.0   # table top height in base (m): the Panda stands on the table here

    def __init__(self, width: int = 224, height: int = 224, default_task: str = "pick",
                 camera_jitter: bool = True, calibration: str | None = None, board=None,
                 camera: CameraPlacement | None = None, look=None, randomize=None, depth_noise=None,
                 objects: int | None = None, object_scale: float = 1.0) -> None:
        """``calibration``: None, or "eye-to-hand" (a ChArUco plate ``board``, a
        posevla_core.calibration.board.CharucoBoardSpec, on the hand; the fixed camera sees it)
        or "eye-in-hand" (the plate on the table; images come from a wrist camera).
        ``camera``: where the fixed camera stands and what it sees (sim/camera.py); a placed
        pose replaces the nominal pose and its jitter in every episode, its fov / width /
        height replace the scene's and ``width`` / ``height``. ``look``: lights and table color
        (a sim/look.py SceneLook; None = as trained). ``randomize``: a sim/randomize.py
        DomainRandomization; every reset then draws the camera (unless one is placed), the
        look and the depth sensor's faults from the episode seed (the training data's scenes).
        ``depth_noise``: a sim/randomize.py DepthNoise applied to every frame of the fixed
        camera, from a stream of the episode seed (None = the clean depth). ``objects``: that
        many objects on the table (tasks.with_objects; None = as drawn, 3-4). ``object_scale``:
        the objects' size factor (scene.check_object_scale): geoms, labels, the expert and
        the lift predicate follow it."""
        self._mj = mujoco = import_mujoco()
        plate = None
        if calibration is not None:
            if calibration not in CALIBRATION_MODES:
                raise ValueError(f"calibration must be one of {CALIBRATION_MODES}, got {calibration!r}")
            png, half = board_texture(board or CharucoBoardSpec())
            plate = (str(png), half, "hand" if calibration == "eye-to-hand" else "table")
        self.calibration = calibration
        self.camera = camera or CameraPlacement()
        width, height = self.camera.width or width, self.camera.height or height
        self.object_scale = scene.check_object_scale(object_scale)
        self.objects = tasks.check_objects(objects)
        self._object_half = scene.OBJECT_HALF * self.object_scale
        self.model = scene.build_model(plate, offscreen=(width, height), object_scale=self.object_scale)
        self.look = look
        if look is not None:
            look.apply(self.model)
        self.randomize = randomize
        self._look_base = self._look_state()
        self._sensor_rng = self._sensor_noise = None
        self.depth_noise = depth_noise
        self.data = mujoco.MjData(self.model)
        self.width, self.height = int(width), int(height)
        self.default_task = default_task
        self.camera_jitter = camera_jitter
        m = self.model
        jid = lambda n: mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, n)  # noqa: E731
        self.arm_joint_names = list(scene.ARM_JOINTS)
        self.finger_joint_names = list(scene.FINGER_JOINTS)
        self.joint_names = self.arm_joint_names + self.finger_joint_names
        self._qadr = np.array([m.jnt_qposadr[jid(n)] for n in self.joint_names])
        self._dadr = np.array([m.jnt_dofadr[jid(n)] for n in self.joint_names])
        self._act = np.array([mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_ACTUATOR, f"act_{n}")
                              for n in self.joint_names])
        self._cam = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, scene.CAMERA_NAME)
        self._wrist_cam = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, scene.WRIST_CAMERA_NAME)
        if self.camera.fov_deg is not None:
            m.cam_fovy[self._cam] = float(self.camera.fov_deg)
        # the camera that renders: the fixed one, or the wrist one of an eye-in-hand scene
        self._render_cam = self._wrist_cam if calibration == "eye-in-hand" else self._cam
        self._ee = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "panda_grasptarget")
        self._body = {n: mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, n)
                      for n in scene.object_names() + scene.bin_names()}
        self.arm = TrajectoryFollower(self.arm_joint_names, scene.HOME_Q)
        self.gripper = TrajectoryFollower(self.finger_joint_names, [scene.FINGER_OPEN] * 2)
        self._renderer = None
        self.spec: EpisodeSpec | None = None
        self._lift_since: float | None = None
        self._success_latched = False

    # ------------------------------------------------------------------ episode
    def reset(self, seed: int = 0, task: str | None = None) -> EpisodeSpec:
        mj, m, d = self._mj, self.model, self.data
        spec = tasks.sample_episode(int(seed), task or self.default_task, self.objects)
        rng = np.random.default_rng([int(seed), 7])
        mj.mj_resetData(m, d)
        q_arm = scene.HOME_Q + rng.uniform(-0.05, 0.05, 7)
        d.qpos[self._qadr] = np.concatenate([q_arm, [scene.FINGER_OPEN] * 2])
        # objects: park all, then place the episode's ones
        for k, name in enumerate(scene.object_names()):
            self._set_free(name, [-1.5, -1.0 + 0.15 * k, PARK_Z + self._object_half], 0.0)
        for name, (x, y, yaw) in ({} if self.calibration else spec.objects).items():  # a clear view of the board
            self._set_free(name, [x, y, self._object_half + 1e-4], yaw)
        for k, name in enumerate(scene.bin_names()):
            mid = m.body_mocapid[self._body[name]]
            d.mocap_pos[mid] = [-1.5, 1.0 + 0.3 * k, -0.74]
            d.mocap_quat[mid] = [1, 0, 0, 0]
        for name, (x, y) in ({} if self.calibration else spec.bins).items():
            d.mocap_pos[m.body_mocapid[self._body[name]]] = [x, y, 0.0]
        # camera: placed, or nominal + jitter (the jitter draws come last: a placement leaves
        # the rest of the episode as it was)
        placed = self.camera.matrix()
        drawn = self.randomize.sample_camera(seed) if self.randomize is not None and placed is None else None
        if placed is not None:
            self._place_camera(placed)
        elif drawn is not None:
            self._place_camera(drawn[0])
            m.cam_fovy[self._cam] = drawn[1]
        else:
            pos, target = CAMERA_NOMINAL_POS.copy(), CAMERA_NOMINAL_TARGET.copy()
            if self.camera_jitter:
                pos = pos + rng.uniform(-0.04, 0.04, 3)
                target = target + rng.uniform(-0.03, 0.03, 3)
            m.cam_pos[self._cam] = pos
            m.cam_quat[self._cam] = scene.look_at_quat(pos, target)
            m.cam_fovy[self._cam] = float(self.camera.fov_deg or scene.CAMERA_FOVY)
        if self.randomize is not None:
            self._restore_look()
            self.randomize.sample_look(seed).apply(m)
            self._sensor_rng = self.randomize.sensor_rng(seed)
            self._sensor_noise = self.randomize.depth_noise
        if self.depth_noise is not None:   # a fixed sensor: faults in every frame, drawn from the seed
            self._sensor_noise, self._sensor_rng = self.depth_noise, np.random.default_rng([int(seed), 14])
        elif self.randomize is None:
            self._sensor_rng = None        # the clean depth
        self.arm.reset(q_arm)
        self.gripper.reset([scene.FINGER_OPEN] * 2)
        d.ctrl[self._act] = np.concatenate([q_arm, [scene.FINGER_OPEN] * 2])
        mj.mj_forward(m, d)
        self.spec = spec
        self._lift_since = None
        self._success_latched = False
        self.step(0.3)  # settle objects
        return spec

    def _look_state(self) -> dict:
        m = self.model
        return {"light_diffuse": m.light_diffuse.copy(), "light_specular": m.light_specular.copy(),
                "light_pos": m.light_pos.copy(), "light_dir": m.light_dir.copy(), "geom_rgba": m.geom_rgba.copy(),
                "headlight": (np.array(m.vis.headlight.diffuse), np.array(m.vis.headlight.ambient))}

    def _restore_look(self) -> None:
        m, b = self.model, self._look_base
        for k in ("light_diffuse", "light_specular", "light_pos", "light_dir", "geom_rgba"):
            getattr(m, k)[:] = b[k]
        m.vis.headlight.diffuse[:], m.vis.headlight.ambient[:] = b["headlight"]

    def _place_camera(self, T_base_optical: np.ndarray) -> None:
        """Put the fixed camera (a worldbody camera: its model pose is its base pose) at the
        optical-frame pose ``T_base_optical``."""

        R_mj = np.asarray(T_base_optical, float)[:3, :3] @ OPTICAL_FROM_MJCAM   # the diag is its own inverse
        qx, qy, qz, qw = Rotation.from_matrix(R_mj).as_quat()
        self.model.cam_pos[self._cam] = np.asarray(T_base_optical, float)[:3, 3]
        self.model.cam_quat[self._cam] = [qw, qx, qy, qz]

    def _set_free(self, name: str, pos, yaw: float) -> None:
        m, d = self.model, self.data
        j = m.body_jntadr[self._body[name]]
        a, v = m.jnt_qposadr[j], m.jnt_dofadr[j]
        d.qpos[a:a + 3] = pos
        d.qpos[a + 3:a + 7] = [math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)]
        d.qvel[v:v + 6] = 0

    # ------------------------------------------------------------------ control
    def step(self, dt: float) -> None:
        """Advance ``dt`` seconds. The joint setpoints are updated every ``CONTROL_DT``
        (a 100 Hz controller, like ros2_control's default update rate) and held in
        between; each control period is one ``mj_step(nstep=...)`` call. Why not one
        Python iteration per physics step: MuJoCo releases the GIL inside mj_step, and in
        a process that also spins ROS executors every re-acquire can wait a full GIL
        switch interval (5 ms), which once slowed the in-process sim to ~0.1x real time."""
        mj, m, d = self._mj, self.model, self.data
        n = max(1, int(round(dt / m.opt.timestep)))
        per_ctrl = max(1, int(round(CONTROL_DT / m.opt.timestep)))
        while n > 0:
            k = min(per_ctrl, n)
            t = d.time
            d.ctrl[self._act[:7]] = self.arm.setpoint(t)
            d.ctrl[self._act[7:]] = self.gripper.setpoint(t)
            mj.mj_step(m, d, nstep=k)
            self._update_success()
            n -= k

    # ------------------------------------------------------------------ state
    def joint_state(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(names, positions, velocities) of the 7 arm joints + 2 finger joints."""
        return (list(self.joint_names), self.data.qpos[self._qadr].copy(), self.data.qvel[self._dadr].copy())

    def arm_q(self) -> np.ndarray:
        return self.data.qpos[self._qadr[:7]].copy()

    def finger_q(self) -> np.ndarray:
        return self.data.qpos[self._qadr[7:]].copy()

    def ee_pose(self) -> np.ndarray:
        T = np.eye(4)
        T[:3, :3] = self.data.xmat[self._ee].reshape(3, 3)
        T[:3, 3] = self.data.xpos[self._ee]
        return T

    def object_pose(self, name: str) -> np.ndarray:
        """4x4 pose of an object / bin body in the base frame."""
        b = self._body[name]
        T = np.eye(4)
        T[:3, :3] = self.data.xmat[b].reshape(3, 3)
        T[:3, 3] = self.data.xpos[b]
        return T

    def object_names(self) -> list[str]:
        return list(self.spec.objects) if self.spec else []

    def object_extent(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(size, center offset) of the object's 3D box in its own frame (scene.object_extent, scaled)."""
        return scene.object_extent(name, self.object_scale)

    def _update_success(self) -> None:
        if self.spec is None or self._success_latched:
            return
        p = self.data.xpos[self._body[self.spec.target]]
        if self.spec.task == "pick":
            if p[2] - self._object_half >= tasks.LIFT_HEIGHT:
                if self._lift_since is None:
                    self._lift_since = self.time
                elif self.time - self._lift_since >= tasks.LIFT_HOLD_S:
                    self._success_latched = True
            else:
                self._lift_since = None

    def container_top(self, name: str) -> np.ndarray:
        """Base-frame point above which the expert releases into bin ``name``: its center at its
        wall tops (the bins stand on the table, table_z = 0)."""
        b = self.object_pose(name)[:3, 3]
        return np.array([b[0], b[1], self.table_z + scene.BIN_HEIGHT])

    def success(self) -> bool:
        """pick: latched once the target was held >= 5 cm up for 0.5 s; put: target in the bin now;
        absent: never (nothing is to be picked; the evaluator judges the refusal)."""
        if self.spec is None or self.spec.task == tasks.ABSENT:
            return False
        if self.spec.task == "pick":
            return self._success_latched
        b = self._body[self.spec.container]
        j = self.model.body_jntadr[self._body[self.spec.target]]
        v = np.linalg.norm(self.data.qvel[self.model.jnt_dofadr[j]:self.model.jnt_dofadr[j] + 3])
        return tasks.in_bin(self.data.xpos[self._body[self.spec.target]], self.data.xpos[b]) and v < 0.05

    # ------------------------------------------------------------------ camera
    def camera_pose_in_base(self, wrist: bool = False) -> np.ndarray:
        """4x4 pose of the camera OPTICAL frame (x right, y down, z forward) in base (``wrist``:
        the wrist camera's, whichever camera ``render`` uses)."""
        mj = self._mj
        mj.mj_kinematics(self.model, self.data) if self.data.time == 0 else None
        T = np.eye(4)
        cam = self._wrist_cam if wrist else self._render_cam
        if cam != self._cam:   # wrist camera: moves with the hand
            mj.mj_kinematics(self.model, self.data)
            T[:3, :3] = self.data.cam_xmat[cam].reshape(3, 3) @ OPTICAL_FROM_MJCAM
            T[:3, 3] = self.data.cam_xpos[cam]
            return T
        # cam_xmat is updated by mj_forward / mj_step; recompute from the model to be safe
        qw, qx, qy, qz = self.model.cam_quat[self._cam]

        T[:3, :3] = Rotation.from_quat([qx, qy, qz, qw]).as_matrix() @ OPTICAL_FROM_MJCAM
        T[:3, 3] = self.model.cam_pos[self._cam]
        return T

    def intrinsics(self, wrist: bool = False) -> np.ndarray:
        return pinhole_K(self.model.cam_fovy[self._wrist_cam if wrist else self._render_cam], self.width, self.height)

    def render(self, wrist: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rgb HxWx3 uint8, depth HxW float32 meters along the optical axis, K 3x3) of the
        camera (``wrist``: the wrist camera, the second camera of a two-camera episode)."""
        rgb, depth = self._render_rgbd(self._wrist_cam if wrist else self._render_cam)
        if self._sensor_rng is not None and not wrist:
            depth = self._sensor_noise.apply(depth, rgb, self._sensor_rng)
        return rgb, depth, self.intrinsics(wrist)
