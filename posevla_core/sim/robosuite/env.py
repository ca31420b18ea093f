"""RobosuiteEnv: a robosuite task behind SimEnv's interface (no rclpy), so sim_node and
everything behind it (policy, executor, recorder, evaluator) run on it unchanged.

Why one module: RobosuiteEnv is one class that mirrors SimEnv's interface method for method,
plus the task and arm tables it is built from.

    env = RobosuiteEnv("Lift", width=224, height=224)
    spec = env.reset(seed, task="pick")        # EpisodeSpec: "lift the red cube", target "red_cube"
    env.send_arm_trajectory(names, times, positions); env.send_gripper_trajectory(...)
    env.step(dt); rgb, depth, K = env.render(); T = env.camera_pose_in_base(); env.success()

What it maps, and why:
- Frames: everything is in the robot's base frame (robosuite's ``robot0_base`` body = the Panda's
  link0), the frame our Panda URDF and the executor use. robosuite puts that base at
  (-0.56, 0, 0.912) in its world, so the table top sits at z = -0.112 in base.
- Joints: our names (``panda_joint1..7``, ``panda_finger_joint1/2``, config/robots/sim_panda.yaml)
  for robosuite's ``robot0_joint1..7`` and ``gripper0_right_finger_joint1/2``; robosuite's second
  finger joint is mirrored (range [-0.04, 0]), so its sign is flipped both ways.
- Arms (``robot=``, ARMS): UR5e, Kinova3 and IIWA carry the same PandaGripper; their joints are
  ``<arm>_joint1..n`` in robosuite's order, their kinematics the URDF exported from robosuite's
  model (posevla_core.sim.robosuite.urdf), their ee frame the same grasp target as the Panda's.
- Control: the trajectories go through the same TrajectoryFollower as SimEnv (the
  joint_trajectory_controller model); its setpoint is robosuite's action at robosuite's control
  frequency (100 Hz, the period of sim_node's physics chunks): the arm through robosuite's
  JOINT_POSITION controller with absolute input, the gripper through robosuite's PandaGripper
  action, whose finger target moves by a fixed step per control step toward the side the sign
  of the action says (-1 open, +1 closed); we give the sign toward the follower's setpoint.
- Success: robosuite's own ``_check_success()`` after every control step, latched for the
  episode (success at any time counts, as robomimic's rollouts stop at the first success).
- Camera: one camera of robosuite's model, rendered with ``mujoco.Renderer``. ``camera="posevla"``
  (default) is robosuite's ``agentview`` moved to where our MuJoCo scene's nominal camera sits
  relative to the robot base, raised or lowered with the table (robosuite's table top is not at
  the base's height) and given our field of view: the camera-frame poses then fall inside the
  bins the shipped checkpoint was fitted on (at agentview, 17.5 % of the waypoint targets of
  60 Lift demos fell outside them). Any camera name of robosuite's model (``agentview``,
  ``frontview``, ``sideview``, ``birdview``, ``robot0_eye_in_hand``, ...: ``camera_names``) renders
  that camera unchanged, with its own field of view. A ``CameraPlacement`` (sim/camera.py) puts
  ``agentview`` at its pose in base as given (no table shift) with its fov (else ours). Either
  way ``camera_pose_in_base`` / ``intrinsics`` are those of the camera rendered, and the
  frame is rendered by us (robosuite's own renderer is off: its frames are upside down by default
  and it forces EGL).
  K is posevla_core.sim.mujoco.env.pinhole_K (pixel centers at integers); robosuite's
  ``get_camera_intrinsic_matrix`` has the same focal length and cx = W/2, half a pixel off.
- Seeds: ``reset(seed)`` reseeds robosuite's own generator in place (the placement sampler
  and the robot's init noise hold it), so an episode is a function of its seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from posevla_core.geometry import se3
from posevla_core.geometry.kinematics import RobotKinematics
from posevla_core.sim.camera import OPTICAL_FROM_MJCAM, CameraPlacement, nominal_camera_pose
from posevla_core.sim.controller import TrajectoryFollower
from posevla_core.sim.demonstrator import default_kinematics
from posevla_core.sim.gl import import_mujoco
from posevla_core.sim.mujoco import scene
from posevla_core.sim.mujoco.assets import GRASPTARGET_OFFSET
from posevla_core.sim.mujoco.env import SimEnvBase, pinhole_K
from posevla_core.sim.robosuite.compat import import_robosuite
from posevla_core.sim.robosuite.urdf import GRIPPER_BODY, HAND_FROM_GRIPPER, urdf_path
from posevla_core.sim.tasks import EpisodeSpec

CONTROL_FREQ = 100           # Hz: robosuite's control frequency = sim_node's 0.01 s physics chunk
SETTLE_S = 0.3               # s stepped after each reset (objects settle), as SimEnv
GRIPPER_JOINTS = ["gripper0_right_finger_joint1", "gripper0_right_finger_joint2"]
FINGER_SIGN = np.array([1.0, -1.0])   # robosuite finger joint = sign * our finger joint
BASE_BODY = "robot0_base"
PLACEMENT, PLACED_CAMERA = "posevla", "agentview"   # camera="posevla": agentview, moved (module docstring)


@dataclass(frozen=True)
class RobosuiteArm:
    """One robosuite arm carrying the PandaGripper: robosuite's robot name, the prefix of our
    joint names (``<prefix>1..n`` in robosuite's joint order) and its robot config."""

    name: str
    joint_prefix: str
    config: str                      # config/robots/<config>.yaml

    def joint_names(self, n: int) -> list[str]:
        return [f"{self.joint_prefix}{i}" for i in range(1, n + 1)]


ARMS = {a.name: a for a in (
    RobosuiteArm("Panda", "panda_joint", "robosuite_panda"),     # our Panda URDF (posevla://panda)
    RobosuiteArm("UR5e", "ur5e_joint", "robosuite_ur5e"),        # URDFs exported from robosuite's MJCF:
    RobosuiteArm("Kinova3", "kinova3_joint", "robosuite_kinova3"),   # posevla_core.sim.robosuite.urdf
    RobosuiteArm("IIWA", "iiwa_joint", "robosuite_iiwa"),
)}


def find_arm(name: str) -> RobosuiteArm:
    """The staged arm called ``name`` (any case); ValueError in one line otherwise."""
    match = {a.lower(): arm for a, arm in ARMS.items()}.get(str(name).strip().lower())
    if match is None:
        raise ValueError(f"robosuite arm {name!r} is not staged here; known: {', '.join(ARMS)}")
    return match


@dataclass(frozen=True)
class RobosuiteTask:
    """One robosuite task as an episode family: its instruction, the task words /sim/reset
    accepts for it, our name for its target object -> robosuite's body name, and for a
    ``put`` task our name of the container (the target object's quadrant of robosuite's bin2)."""

    env_name: str
    instruction: str
    family: str                      # our task family it counts as (the evaluator's "pick" / "put")
    objects: dict                    # our object name -> robosuite body name
    target: str
    container: str | None = None
    camera_back: float = 0.0         # m: the placed camera moved back along its optical axis
    fixtures: dict = field(default_factory=dict)   # our name -> robosuite body of a fixed container (a peg): not labeled
    grasp_site: str | None = None    # robosuite site the target is grasped at (a handle), across its y axis
    place_yaw_step: float | None = None   # the target must sit at the container's yaw modulo this (a square nut on its peg)


TASKS = {
    "Lift": RobosuiteTask("Lift", "lift the red cube", "pick", {"red_cube": "cube_main"}, "red_cube"),
    # camera 0.10 m further back: the release point above the can's bin lay 0.586 m in front of
    # the camera, 7 cm nearer than the shipped checkpoint's position bins reach (0.66 m), so
    # 27.9 % of the demos' waypoint targets were clipped; a fine-tune keeps its bins
    "PickPlaceCan": RobosuiteTask("PickPlaceCan", "put the can in its bin", "put", {"red_can": "Can_main"},
                                  "red_can", container="can_bin", camera_back=0.10),
    # a put whose container is an object: robosuite's cubeA (red, 4 cm) onto cubeB (green, 5 cm)
    "Stack": RobosuiteTask("Stack", "stack the red cube on the green cube", "put",
                           {"red_cube": "cubeA_main", "green_cube": "cubeB_main"}, "red_cube", container="green_cube"),
    # the nut is grasped by its handle (5.4 cm from its center) and turned square to the peg;
    # its hole (4.55 cm) leaves 6.8 mm per side around the 3.2 cm peg when square, none at 45 deg
    "NutAssemblySquare": RobosuiteTask("NutAssemblySquare", "put the square nut on the peg", "put",
                                       {"square_nut": "SquareNut_main"}, "square_nut", container="square_peg",
                                       fixtures={"square_peg": "peg1"}, grasp_site="SquareNut_handle_site",
                                       place_yaw_step=math.pi / 2),
}
# our object name -> its category label (category_of): the shipped checkpoint's categories
CATEGORY = {"red_can": "red cylinder", "square_nut": "object"}
BIN_MARGIN = 0.05    # m: the expert's release point stays this far inside the target quadrant's edges


def check_task(task: RobosuiteTask, words) -> None:
    """A /sim/reset task string this robosuite task stages: empty, its family ("pick"), its
    name ("lift") or its instruction. ValueError in one line otherwise."""
    said = " ".join(str(words or "").split()).lower()
    accepted = {task.family, task.env_name.lower(), task.instruction}
    if said and said not in accepted:
        raise ValueError(f"robosuite {task.env_name} stages one task: {task.instruction!r} "
                         f"(ask for it as {' | '.join(sorted(accepted))}), not {words!r}")


def _make_suite(task: RobosuiteTask, arm: RobosuiteArm):
    """robosuite's env of ``task`` on ``arm`` (PandaGripper, JOINT_POSITION, no renderer of its own)."""

    suite = import_robosuite()
    return suite.make(task.env_name, robots=arm.name, gripper_types="PandaGripper",
                      controller_configs=_controller_config(arm.name),
                      has_renderer=False, has_offscreen_renderer=False, use_camera_obs=False,
                      use_object_obs=True, control_freq=CONTROL_FREQ, hard_reset=False,
                      horizon=10 ** 9, ignore_done=True, seed=0)


def _model_cameras(mujoco, model) -> list[str]:
    return [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(model.ncam)]


def camera_names(task: str = "Lift", robot: str = "Panda") -> list[str]:
    """The camera names of robosuite's model of ``task`` on ``robot`` (builds it: about 2 s with
    the import), e.g. Lift: frontview, birdview, agentview, sideview, robot0_robotview,
    robot0_eye_in_hand (PickPlaceCan has no sideview)."""

    if task not in TASKS:
        raise ValueError(f"robosuite task {task!r} is not staged here; known: {sorted(TASKS)}")
    rs = _make_suite(TASKS[task], find_arm(robot))
    try:
        return _model_cameras(import_mujoco(), rs.sim.model._model)
    finally:
        rs.close()


def camera_error(task: str, name: str, names: list[str]) -> ValueError:
    """The one-line error of a camera name robosuite's ``task`` lacks, naming those it has."""
    return ValueError(f"robosuite {task} has no camera {name!r}; its cameras: {', '.join(names)} "
                      f"(or {PLACEMENT}: {PLACED_CAMERA} moved to where our scene's camera sits)")


def _controller_config(robot: str = "Panda") -> dict:
    """robosuite's composite config of ``robot`` with the arm on JOINT_POSITION (absolute targets)."""
    # robosuite: optional, only the robosuite tasks need it
    from robosuite.controllers import load_composite_controller_config, load_part_controller_config

    cfg = load_composite_controller_config(robot=robot)
    arm = load_part_controller_config(default_controller="JOINT_POSITION")
    arm.update(input_type="absolute", gripper=cfg["body_parts"]["right"].get("gripper", {"type": "GRIP"}))
    cfg["body_parts"]["right"] = arm
    return cfg


class RobosuiteEnv(SimEnvBase):
    def __init__(self, task: str = "Lift", width: int = 224, height: int = 224, default_task: str = "pick",
                 camera="posevla", camera_jitter: bool = False, robot: str = "Panda") -> None:
        """``robot``: a staged arm (ARMS), always with the PandaGripper. ``camera``: ``"posevla"``
        (default), a camera name of robosuite's model, or a CameraPlacement (module docstring;
        None = ``"posevla"``); an unknown name is a ValueError in one line that lists the names.
        ``default_task`` and ``camera_jitter`` are accepted for SimEnv's signature: a robosuite
        env stages its one task (an empty reset request is it) and its camera stays fixed."""

        if task not in TASKS:
            raise ValueError(f"robosuite task {task!r} is not staged here; known: {sorted(TASKS)}")
        placement = camera if isinstance(camera, CameraPlacement) else None
        camera = PLACEMENT if placement is not None or camera is None else str(camera).strip() or PLACEMENT
        self._mj = mujoco = import_mujoco()
        self.task = TASKS[task]
        self.arm_spec = find_arm(robot)
        self.default_task = default_task
        self.width = int(placement.width or width) if placement is not None else int(width)
        self.height = int(placement.height or height) if placement is not None else int(height)
        self.rs = _make_suite(self.task, self.arm_spec)
        self.model, self.data = self.rs.sim.model._model, self.rs.sim.data._data
        m = self.model
        self.model.vis.global_.offwidth = max(int(m.vis.global_.offwidth), self.width)
        self.model.vis.global_.offheight = max(int(m.vis.global_.offheight), self.height)
        name2id = lambda kind, n: mujoco.mj_name2id(m, kind, n)  # noqa: E731
        self.rs_arm_joints = list(self.rs.robots[0].robot_joints)     # robosuite's order = the controller's
        self.n_arm = len(self.rs_arm_joints)
        jid = [name2id(mujoco.mjtObj.mjOBJ_JOINT, n) for n in self.rs_arm_joints + GRIPPER_JOINTS]
        if min(jid) < 0:
            raise RuntimeError(f"robosuite's {robot} lacks one of {self.rs_arm_joints + GRIPPER_JOINTS}")
        self._qadr = np.array([m.jnt_qposadr[j] for j in jid])
        self._dadr = np.array([m.jnt_dofadr[j] for j in jid])
        self._cam = name2id(mujoco.mjtObj.mjOBJ_CAMERA, PLACED_CAMERA if camera == PLACEMENT else camera)
        if self._cam < 0:
            raise camera_error(task, camera, _model_cameras(mujoco, m))
        self.camera_name = camera           # "posevla" for a placement too: agentview, moved
        self.placement = placement
        self._base = name2id(mujoco.mjtObj.mjOBJ_BODY, BASE_BODY)
        self._gripper_body = name2id(mujoco.mjtObj.mjOBJ_BODY, GRIPPER_BODY)
        self._body = {ours: name2id(mujoco.mjtObj.mjOBJ_BODY, theirs) for ours, theirs in self.task.objects.items()}
        self.arm_joint_names = self.arm_spec.joint_names(self.n_arm)
        self.finger_joint_names = list(scene.FINGER_JOINTS)
        self.joint_names = self.arm_joint_names + self.finger_joint_names
        self._gripper_model = self.rs.robots[0].gripper["right"]
        mujoco.mj_kinematics(m, self.data)
        self.table_z = float(self._world_to_base(self._surface_world())[2])
        if camera == PLACEMENT:
            self._place_camera(placement)
        self.arm = TrajectoryFollower(self.arm_joint_names, np.zeros(self.n_arm))
        self.gripper = TrajectoryFollower(self.finger_joint_names, [scene.FINGER_OPEN] * 2)
        self._renderer = None
        # robosuite's visual meshes are geom group 1; its collision geoms (group 0, flat green /
        # blue) overlap them and are hidden, as robosuite's own renderer does
        self.scene_option = mujoco.MjvOption()
        self.scene_option.geomgroup[0] = 0
        self.spec: EpisodeSpec | None = None
        self._success_latched = False
        self._kin = None

    # ------------------------------------------------------------------ episode
    def _episode_spec(self, seed: int, task: str | None) -> EpisodeSpec:
        # a robosuite env stages its one task: an empty request is that task
        check_task(self.task, task or self.task.family)
        return EpisodeSpec(instruction=self.task.instruction, task=self.task.family, target=self.task.target,
                           container=self.task.container, seed=int(seed))

    def reset(self, seed: int = 0, task: str | None = None) -> EpisodeSpec:
        spec = self._episode_spec(seed, task)
        # reseed robosuite's generator IN PLACE: its placement sampler and robots hold this object
        self.rs.rng.bit_generator.state = np.random.default_rng([int(seed), 17]).bit_generator.state
        self.rs.reset()
        q = self.arm_q()
        self.arm.reset(q)
        self.gripper.reset([scene.FINGER_OPEN] * 2)   # robosuite starts half open; open it while settling
        self.spec = spec
        self._success_latched = False
        for name in self._body:
            p = self.object_pose(name)
            spec.objects[name] = (float(p[0, 3]), float(p[1, 3]), float(np.arctan2(p[1, 0], p[0, 0])))
        if spec.container is not None:
            spec.bins[spec.container] = tuple(float(x) for x in self.container_top(spec.container)[:2])
        self.step(SETTLE_S)
        return spec

    # ------------------------------------------------------------------ control
    def _gripper_action(self, t: float) -> float:
        """robosuite's PandaGripper action (-1 open .. +1 close; its sign moves the finger target
        one step) toward the follower's setpoint. The target is robosuite's ``current_action``
        (-1 = fully open): setpoint p in [0, 0.04] m is target 1 - 2 p / 0.04."""
        want = 1.0 - 2.0 * float(np.mean(self.gripper.setpoint(t))) / scene.FINGER_OPEN
        have = float(np.mean(self._gripper_model.current_action * [-1.0, 1.0]))
        step = float(self._gripper_model.speed)
        return 0.0 if abs(want - have) < step / 2 else float(np.sign(want - have))

    def step(self, dt: float) -> None:
        """Advance ``dt`` seconds in robosuite control steps (1 / CONTROL_FREQ each): the arm
        follower's setpoint is the JOINT_POSITION target of the step."""
        period = 1.0 / CONTROL_FREQ
        n = max(1, int(round(dt / period)))
        for _ in range(n):
            t = self.time
            action = np.concatenate([self.arm.setpoint(t), [self._gripper_action(t)]])
            self.rs.step(action)
            if not self._success_latched and self.spec is not None and self.rs._check_success():
                self._success_latched = True

    # ------------------------------------------------------------------ state
    def joint_state(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(names, positions, velocities) of the arm joints + 2 finger joints (our names, signs)."""
        sign = np.r_[np.ones(self.n_arm), FINGER_SIGN]
        return (list(self.joint_names), self.data.qpos[self._qadr] * sign, self.data.qvel[self._dadr] * sign)

    def arm_q(self) -> np.ndarray:
        return self.data.qpos[self._qadr[:self.n_arm]].copy()

    def finger_q(self) -> np.ndarray:
        return self.data.qpos[self._qadr[self.n_arm:]] * FINGER_SIGN

    def base_pose_in_world(self) -> np.ndarray:
        T = np.eye(4)
        T[:3, :3] = self.data.xmat[self._base].reshape(3, 3)
        T[:3, 3] = self.data.xpos[self._base]
        return T

    def _world_to_base(self, p_world) -> np.ndarray:
        return (se3.inv_T(self.base_pose_in_world()) @ np.r_[np.asarray(p_world, dtype=float), 1.0])[:3]

    def _body_top_world(self, body: str) -> float:
        """World z of the highest point of ``body``'s geoms (their boxes' tops)."""
        b = self._mj.mj_name2id(self.model, self._mj.mjtObj.mjOBJ_BODY, body)
        geoms = [g for g in range(self.model.ngeom) if self.model.geom_bodyid[g] == b]
        return float(self.data.xpos[b][2] + max(self.model.geom_pos[g][2] + self.model.geom_size[g][2] for g in geoms))

    def _surface_world(self) -> np.ndarray:
        """Where the objects rest, in the world: the table top (Lift) or bin1's floor (PickPlace)."""
        arena = self.rs.model.mujoco_arena
        if hasattr(arena, "table_offset"):
            return np.asarray(arena.table_offset, dtype=float)
        b = self._mj.mj_name2id(self.model, self._mj.mjtObj.mjOBJ_BODY, "bin1")
        floor = min((g for g in range(self.model.ngeom) if self.model.geom_bodyid[g] == b),
                    key=lambda g: np.linalg.norm(self.model.geom_pos[g]))   # the floor plate: at the body's origin
        return self.data.xpos[b] + [0.0, 0.0, self.model.geom_pos[floor][2] + self.model.geom_size[floor][2]]

    def container_top(self, name: str) -> np.ndarray:
        """Base-frame point above which the expert releases into ``name``. A fixture (the nut's
        peg): its top center. An object (Stack's green cube): the center of its top face. A bin quadrant (PickPlaceCan): the point of the
        target object's quadrant of bin2 (robosuite's ``target_bin_placements``, ``bin_size`` / 2
        wide) nearest the robot, BIN_MARGIN inside its edges (the quadrant's center is beyond the
        Panda's top-down reach), at the height of bin2's wall tops."""
        if name != self.task.container:
            raise KeyError(f"no container {name!r} in robosuite {self.task.env_name}")
        if name in self.task.fixtures:
            b = self._mj.mj_name2id(self.model, self._mj.mjtObj.mjOBJ_BODY, self.task.fixtures[name])
            xy = self._world_to_base(self.data.xpos[b])[:2]
            return np.r_[xy, self._world_to_base([0.0, 0.0, self._body_top_world(self.task.fixtures[name])])[2]]
        if name in self._body:
            size, center = self.object_extent(name)
            T = self.object_pose(name)
            top = T[:3, :3] @ center + T[:3, 3]
            return np.r_[top[:2], top[2] + size[2] / 2]
        obj_id = self.rs.object_id
        center = self._world_to_base(self.rs.target_bin_placements[obj_id])
        half = np.asarray(self.rs.bin_size[:2], dtype=float) / 4 - BIN_MARGIN
        xy = np.clip([0.0, 0.0], center[:2] - half, center[:2] + half)
        return np.r_[xy, self._world_to_base([0.0, 0.0, self._body_top_world("bin2")])[2]]

    def _in_base(self, R_world: np.ndarray, p_world: np.ndarray) -> np.ndarray:
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = R_world, p_world
        return se3.inv_T(self.base_pose_in_world()) @ T

    def ee_pose(self) -> np.ndarray:
        """The grasp target between the PandaGripper's fingers, in base, the same frame on every arm:
        the gripper body turned +90 deg about z (= robosuite's ``robot0_right_hand`` on the Panda,
        our ``panda_hand``) + GRASPTARGET_OFFSET along its z (our ``panda_grasptarget``, the
        executor's ee_link). Not robosuite's ``grip_site``: that one sits 8.5 mm closer to the hand
        and is turned 90 deg about z, so labels and the executor's FK agree."""
        g = self._gripper_body
        T = self._in_base(self.data.xmat[g].reshape(3, 3) @ HAND_FROM_GRIPPER, self.data.xpos[g])
        T[:3, 3] += T[:3, 2] * GRASPTARGET_OFFSET
        return T

    def kinematics(self):
        """RobotKinematics of this arm as its robot config plans it: our Panda URDF on the Panda,
        the URDF exported from robosuite's model (config/robots/robosuite/) on the others."""
        if self._kin is None:
            if self.arm_spec.name == "Panda":
                self._kin = default_kinematics()
            else:
                self._kin = RobotKinematics(urdf_path(self.arm_spec.name), f"{self.arm_spec.name.lower()}_grasptarget",
                                            self.arm_joint_names)
        return self._kin

    def object_pose(self, name: str) -> np.ndarray:
        b = self._body[name]
        return self._in_base(self.data.xmat[b].reshape(3, 3), self.data.xpos[b])

    def object_names(self) -> list[str]:
        return list(self._body)

    def category_of(self, name: str) -> str:
        """Labels use the shipped checkpoint's categories: robosuite's can is a red cylinder (a
        category of its own would be a new pose token, which a fine-tune cannot add)."""
        return CATEGORY.get(name) or super().category_of(name)

    def grasp_point(self, name: str) -> tuple[np.ndarray, float, float | None]:
        """The task's ``grasp_site`` (the nut's handle), fingers closing across its y axis; else
        the object's origin (SimEnvBase)."""
        if name != self.task.target or self.task.grasp_site is None:
            return super().grasp_point(name)
        site = self._mj.mj_name2id(self.model, self._mj.mjtObj.mjOBJ_SITE, self.task.grasp_site)
        T = self.object_pose(name)
        return self._world_to_base(self.data.site_xpos[site]), math.atan2(T[1, 0], T[0, 0]) + math.pi / 2, math.pi

    def places_onto(self, container: str) -> bool:
        """An object (Stack's green cube) or a fixture (the peg) is placed onto; bin2's quadrant is dropped into."""
        return container in self._body or container in self.task.fixtures

    def place_turn(self, name: str, container: str) -> tuple[float, float | None]:
        """With ``place_yaw_step``: the smallest turn that squares ``name`` with the container, and
        that step (any turn + k step fits too)."""
        step = self.task.place_yaw_step
        if step is None or name != self.task.target:
            return 0.0, None
        T = self.object_pose(name)
        b = self._mj.mj_name2id(self.model, self._mj.mjtObj.mjOBJ_BODY, self.task.fixtures.get(container, ""))
        R = (se3.inv_T(self.base_pose_in_world())[:3, :3] @ self.data.xmat[b].reshape(3, 3)) if b >= 0 else np.eye(3)
        d = math.atan2(R[1, 0], R[0, 0]) - math.atan2(T[1, 0], T[0, 0])
        return (d + step / 2) % step - step / 2, step

    def labeled_names(self) -> list[str]:
        """robosuite's objects; not a fixture (the peg) nor bin2's quadrant (no body of its own)."""
        return self.object_names()

    def object_extent(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(size, center offset) in the body frame: the box around its collision geoms (MuJoCo's
        per-geom ``geom_aabb``; the cube's is robosuite's half-sizes x 2; robosuite's own
        bottom / top offsets of the can miss its mesh by 2 cm)."""
        if name not in self._body:
            raise KeyError(f"no object {name!r} in robosuite {self.task.env_name}")
        m, b = self.model, self._body[name]
        pts = []
        for g in range(m.ngeom):
            if m.geom_bodyid[g] != b or m.geom_contype[g] == 0:
                continue
            c, h = m.geom_aabb[g][:3], m.geom_aabb[g][3:]
            R = np.empty(9)
            self._mj.mju_quat2Mat(R, m.geom_quat[g])
            corners = c + h * np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])
            pts.append(corners @ R.reshape(3, 3).T + m.geom_pos[g])
        pts = np.concatenate(pts)
        lo, hi = pts.min(0), pts.max(0)
        return hi - lo, (hi + lo) / 2

    def success(self) -> bool:
        """robosuite's ``_check_success()`` was true at some control step of this episode."""
        return bool(self._success_latched)

    # ------------------------------------------------------------------ camera
    def _place_camera(self, placement=None) -> None:
        """Move PLACED_CAMERA to our scene's nominal camera pose in base, shifted by the table
        height and the task's ``camera_back``, with our field of view (see the module docstring);
        or to ``placement``'s pose (a CameraPlacement: optical frame in base, as given) and fov."""

        if self.model.cam_bodyid[self._cam] != 0:
            raise RuntimeError(f"robosuite's {PLACED_CAMERA} is not fixed in the world")
        T_base = placement.matrix() if placement is not None else None
        if T_base is None:
            T_base = nominal_camera_pose()
            T_base[2, 3] += self.table_z
            T_base[:3, 3] -= self.task.camera_back * T_base[:3, 2]     # optical z points at the scene
        T_world = self.base_pose_in_world() @ T_base
        qx, qy, qz, qw = Rotation.from_matrix(T_world[:3, :3] @ OPTICAL_FROM_MJCAM.T).as_quat()
        self.model.cam_pos[self._cam] = T_world[:3, 3]
        self.model.cam_quat[self._cam] = [qw, qx, qy, qz]
        fov = placement.fov_deg if placement is not None else None
        self.model.cam_fovy[self._cam] = float(fov or scene.CAMERA_FOVY)
        self._mj.mj_kinematics(self.model, self.data)
        self._mj.mj_camlight(self.model, self.data)      # cameras' world poses (data.cam_xpos)

    def camera_pose_in_base(self, wrist: bool = False) -> np.ndarray:
        """4x4 pose of the rendered camera's OPTICAL frame (x right, y down, z forward) in base, as
        it is now (a camera on the robot, ``robot0_eye_in_hand``, moves with it)."""
        if wrist:
            raise ValueError("the robosuite env renders one camera (no second, wrist camera)")
        return self._in_base(self.data.cam_xmat[self._cam].reshape(3, 3) @ OPTICAL_FROM_MJCAM,
                             self.data.cam_xpos[self._cam])

    def intrinsics(self, wrist: bool = False) -> np.ndarray:
        return pinhole_K(self.model.cam_fovy[self._cam], self.width, self.height)

    def render(self, wrist: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rgb HxWx3 uint8, depth HxW float32 meters, NaN = no reading, K 3x3) of the camera."""
        if wrist:
            raise ValueError("the robosuite env renders one camera (no second, wrist camera)")
        rgb, depth = self._render_rgbd(self._cam)
        return rgb, depth, self.intrinsics()
