"""RobosuiteEnv: a robosuite task behind SimEnv's interface (no rclpy), so sim_node and
everything behind it (policy, executor, recorder, evaluator) run on it unchanged.

    env = RobosuiteEnv("Lift", width=224, height=224)
    spec = env.reset(seed, task="pick")        # EpisodeSpec: "lift the red cube", target "red_cube"
    env.send_arm_trajectory(names, times, positions); env.send_gripper_trajectory(...)
    env.step(dt); rgb, depth, K = env.render(); T = env.camera_pose_in_base(); env.success()

What it maps, and why:
- Frames: everything is in the robot's base frame (robosuite's ``robot0_base`` body = the Panda's
  link0), the frame our Panda URDF and the executor use. robosuite puts that base at
  (-0.56, 0, 0.912) in its world, so the table top sits at z = -0.112 in base.
- Joints: our names (``panda_joint1..7``, ``panda_finger_joint1/2``, config/robots/panda.yaml)
  for robosuite's ``robot0_joint1..7`` and ``gripper0_right_finger_joint1/2``; robosuite's second
  finger joint is mirrored (range [-0.04, 0]), so its sign is flipped both ways.
- Control: the trajectories go through the same TrajectoryFollower as SimEnv (the
  joint_trajectory_controller model); its setpoint is robosuite's action at robosuite's control
  frequency (100 Hz, the period of sim_node's physics chunks): the arm through robosuite's
  JOINT_POSITION controller with absolute input, the gripper through robosuite's PandaGripper
  action, whose finger target moves by a fixed step per control step toward the side the sign
  of the action says (-1 open, +1 closed); we give the sign toward the follower's setpoint.
- Success: robosuite's own ``_check_success()`` after every control step, latched for the
  episode (success at any time counts, as robomimic's rollouts stop at the first success).
- Camera: a fixed arena camera (``agentview`` by default), rendered with ``mujoco.Renderer``
  (robosuite's own renderer is off: its frames are upside down by default and it forces EGL).
  K is posevla_core.sim.env.pinhole_K (pixel centers at integers); robosuite's
  ``get_camera_intrinsic_matrix`` has the same focal length and cx = W/2, half a pixel off.
- Seeds: ``reset(seed)`` reseeds robosuite's own generator in place (the placement sampler
  and the robot's init noise hold it), so an episode is a function of its seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posevla_core import se3
from posevla_core.sim import scene
from posevla_core.sim.assets import GRASPTARGET_OFFSET
from posevla_core.sim.controller import TrajectoryFollower
from posevla_core.sim.env import OPTICAL_FROM_MJCAM, SimEnvBase, pinhole_K
from posevla_core.sim.tasks import EpisodeSpec

CONTROL_FREQ = 100           # Hz: robosuite's control frequency = sim_node's 0.01 s physics chunk
SETTLE_S = 0.3               # s stepped after each reset (objects settle), as SimEnv
ROBOT_JOINTS = [f"robot0_joint{i}" for i in range(1, 8)]
GRIPPER_JOINTS = ["gripper0_right_finger_joint1", "gripper0_right_finger_joint2"]
FINGER_SIGN = np.array([1.0, -1.0])   # robosuite finger joint = sign * our finger joint
HAND_BODY = "robot0_right_hand"   # = our URDF's panda_hand (FK within 0.5 mm, see docs/robosuite.md)
BASE_BODY = "robot0_base"


@dataclass(frozen=True)
class RobosuiteTask:
    """One robosuite task as an episode family: its instruction, the task words /sim/reset
    accepts for it, and our name for its target object -> robosuite's body name."""

    env_name: str
    instruction: str
    family: str                      # our task family it counts as (the evaluator's "pick")
    objects: dict                    # our object name -> robosuite body name
    target: str


TASKS = {
    "Lift": RobosuiteTask("Lift", "lift the red cube", "pick", {"red_cube": "cube_main"}, "red_cube"),
}


def check_task(task: RobosuiteTask, words) -> None:
    """A /sim/reset task string this robosuite task stages: empty, its family ("pick"), its
    name ("lift") or its instruction. ValueError in one line otherwise."""
    said = " ".join(str(words or "").split()).lower()
    accepted = {task.family, task.env_name.lower(), task.instruction}
    if said and said not in accepted:
        raise ValueError(f"robosuite {task.env_name} stages one task: {task.instruction!r} "
                         f"(ask for it as {' | '.join(sorted(accepted))}), not {words!r}")


def _controller_config() -> dict:
    """robosuite's Panda composite config with the arm on JOINT_POSITION (absolute targets)."""
    from robosuite.controllers import load_composite_controller_config, load_part_controller_config

    cfg = load_composite_controller_config(robot="Panda")
    arm = load_part_controller_config(default_controller="JOINT_POSITION")
    arm.update(input_type="absolute", gripper=cfg["body_parts"]["right"].get("gripper", {"type": "GRIP"}))
    cfg["body_parts"]["right"] = arm
    return cfg


class RobosuiteEnv(SimEnvBase):
    def __init__(self, task: str = "Lift", width: int = 224, height: int = 224, default_task: str = "pick",
                 camera: str = "agentview", camera_jitter: bool = False) -> None:
        """``camera_jitter`` is accepted for SimEnv's signature; robosuite's camera stays fixed."""
        from posevla_core.sim.gl import import_mujoco
        from posevla_core.sim.robosuite_compat import import_robosuite

        if task not in TASKS:
            raise ValueError(f"robosuite task {task!r} is not staged here; known: {sorted(TASKS)}")
        suite = import_robosuite()
        self._mj = mujoco = import_mujoco()
        self.task = TASKS[task]
        self.default_task = default_task
        self.width, self.height = int(width), int(height)
        self.rs = suite.make(self.task.env_name, robots="Panda", controller_configs=_controller_config(),
                             has_renderer=False, has_offscreen_renderer=False, use_camera_obs=False,
                             use_object_obs=True, control_freq=CONTROL_FREQ, hard_reset=False,
                             horizon=10 ** 9, ignore_done=True, seed=0)
        self.model, self.data = self.rs.sim.model._model, self.rs.sim.data._data
        m = self.model
        self.model.vis.global_.offwidth = max(int(m.vis.global_.offwidth), self.width)
        self.model.vis.global_.offheight = max(int(m.vis.global_.offheight), self.height)
        name2id = lambda kind, n: mujoco.mj_name2id(m, kind, n)  # noqa: E731
        jid = [name2id(mujoco.mjtObj.mjOBJ_JOINT, n) for n in ROBOT_JOINTS + GRIPPER_JOINTS]
        if min(jid) < 0:
            raise RuntimeError(f"robosuite's Panda lacks one of {ROBOT_JOINTS + GRIPPER_JOINTS}")
        self._qadr = np.array([m.jnt_qposadr[j] for j in jid])
        self._dadr = np.array([m.jnt_dofadr[j] for j in jid])
        self._cam = name2id(mujoco.mjtObj.mjOBJ_CAMERA, camera)
        if self._cam < 0:
            raise ValueError(f"robosuite {task} has no camera {camera!r}")
        self.camera_name = camera
        self._base = name2id(mujoco.mjtObj.mjOBJ_BODY, BASE_BODY)
        self._hand = name2id(mujoco.mjtObj.mjOBJ_BODY, HAND_BODY)
        self._body = {ours: name2id(mujoco.mjtObj.mjOBJ_BODY, theirs) for ours, theirs in self.task.objects.items()}
        self.arm_joint_names = list(scene.ARM_JOINTS)
        self.finger_joint_names = list(scene.FINGER_JOINTS)
        self.joint_names = self.arm_joint_names + self.finger_joint_names
        self._gripper_model = self.rs.robots[0].gripper["right"]
        table_top_world = np.asarray(self.rs.model.mujoco_arena.table_offset, dtype=float)
        mujoco.mj_kinematics(m, self.data)
        self.table_z = float((se3.inv_T(self.base_pose_in_world()) @ np.r_[table_top_world, 1.0])[2])
        self.arm = TrajectoryFollower(self.arm_joint_names, np.zeros(7))
        self.gripper = TrajectoryFollower(self.finger_joint_names, [scene.FINGER_OPEN] * 2)
        self._renderer = None
        # robosuite's visual meshes are geom group 1; its collision geoms (group 0, flat green /
        # blue) overlap them and are hidden, as robosuite's own renderer does
        self.scene_option = mujoco.MjvOption()
        self.scene_option.geomgroup[0] = 0
        self.spec: EpisodeSpec | None = None
        self._success_latched = False

    # ------------------------------------------------------------------ episode
    def _episode_spec(self, seed: int, task: str | None) -> EpisodeSpec:
        check_task(self.task, task or self.default_task)
        return EpisodeSpec(instruction=self.task.instruction, task=self.task.family, target=self.task.target,
                           container=None, seed=int(seed))

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
        """(names, positions, velocities) of the 7 arm joints + 2 finger joints (our names, signs)."""
        sign = np.r_[np.ones(7), FINGER_SIGN]
        return (list(self.joint_names), self.data.qpos[self._qadr] * sign, self.data.qvel[self._dadr] * sign)

    def arm_q(self) -> np.ndarray:
        return self.data.qpos[self._qadr[:7]].copy()

    def finger_q(self) -> np.ndarray:
        return self.data.qpos[self._qadr[7:]] * FINGER_SIGN

    def base_pose_in_world(self) -> np.ndarray:
        T = np.eye(4)
        T[:3, :3] = self.data.xmat[self._base].reshape(3, 3)
        T[:3, 3] = self.data.xpos[self._base]
        return T

    def _in_base(self, R_world: np.ndarray, p_world: np.ndarray) -> np.ndarray:
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = R_world, p_world
        return se3.inv_T(self.base_pose_in_world()) @ T

    def ee_pose(self) -> np.ndarray:
        """Our ``panda_grasptarget`` (the executor's ee_link: panda_hand + GRASPTARGET_OFFSET along
        its z) on robosuite's hand, in base. Not robosuite's ``grip_site``: that one sits 8.5 mm
        closer to the hand and is turned 90 deg about z, so labels and the executor's FK agree."""
        T = self._in_base(self.data.xmat[self._hand].reshape(3, 3), self.data.xpos[self._hand])
        T[:3, 3] += T[:3, 2] * GRASPTARGET_OFFSET
        return T

    def object_pose(self, name: str) -> np.ndarray:
        b = self._body[name]
        return self._in_base(self.data.xmat[b].reshape(3, 3), self.data.xpos[b])

    def object_names(self) -> list[str]:
        return list(self._body)

    def object_extent(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(size, center offset): robosuite's box half-sizes x 2, centered on the body."""
        if name not in self._body:
            raise KeyError(f"no object {name!r} in robosuite {self.task.env_name}")
        return 2.0 * np.asarray(self.rs.cube.size, dtype=float), np.zeros(3)

    def success(self) -> bool:
        """robosuite's ``_check_success()`` was true at some control step of this episode."""
        return bool(self._success_latched)

    # ------------------------------------------------------------------ camera
    def camera_pose_in_base(self, wrist: bool = False) -> np.ndarray:
        """4x4 pose of the fixed camera's OPTICAL frame (x right, y down, z forward) in base."""
        if wrist:
            raise ValueError("the robosuite env renders one fixed camera (no wrist camera)")
        return self._in_base(self.data.cam_xmat[self._cam].reshape(3, 3) @ OPTICAL_FROM_MJCAM,
                             self.data.cam_xpos[self._cam])

    def intrinsics(self, wrist: bool = False) -> np.ndarray:
        return pinhole_K(self.model.cam_fovy[self._cam], self.width, self.height)

    def render(self, wrist: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rgb HxWx3 uint8, depth HxW float32 meters, NaN = no reading, K 3x3) of the camera."""
        if wrist:
            raise ValueError("the robosuite env renders one fixed camera (no wrist camera)")
        rgb, depth = self._render_rgbd(self._cam)
        return rgb, depth, self.intrinsics()
