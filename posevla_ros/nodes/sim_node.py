"""sim_node: the MuJoCo Panda scene (posevla_core.sim.mujoco.env.SimEnv) as a ROS 2 node, stepped in
real time (``real_time_factor``) in its own thread. ``sim:=robosuite:Lift`` serves a robosuite
task instead (posevla_core.sim.robosuite.env.RobosuiteEnv: same topics, services and frames;
parsed by posevla_core.sim.factory).

Publishes (stamps = sim time)
- ``/clock`` (rosgraph_msgs/Clock) every physics chunk
- ``/camera/color/image_raw`` (rgb8, frame ``camera_color_optical_frame``),
  ``/camera/aligned_depth_to_color/image_raw`` (32FC1 meters, NaN = no reading),
  ``/camera/color/camera_info`` at ``image_rate_hz`` (sim time)
- the same three under ``wrist_camera_ns`` (frame ``wrist_camera_frame``) when it is set
- ``/joint_states`` (the arm's joints, 7 or 6 on robosuite's UR5e, + 2 finger joints) at ``joint_state_rate_hz``
- ``/sim/camera_pose`` (geometry_msgs/PoseStamped in ``base_frame``: the optical frame's
  pose, randomized per episode, or where ``camera_pose`` / ``camera_fov_deg`` put it,
  posevla_core.sim.camera, or robosuite's camera ``sim_camera``); also on /tf when tf2_msgs imports
- ``/posevla/instruction`` (std_msgs/String, reliable + transient local) at every reset when
  ``publish_instruction`` is true (sim_demo.launch.py: the policy acts with nobody typing)
The episode's first success (the sim's success predicate, checked after every physics chunk) is
logged once, with the sim time it took: the one line that says a sim demo worked. With
``hold_on_success`` the node then ends the episode the way the evaluator does: it calls
``/posevla/stop`` (the executor holds position and ignores predictions) and ``/posevla/pause``
(the policy stops predicting). Why: the sim demo used to reach its success (seed 1000 at ~22 s sim
time) without a word, then the policy kept acting with the object in the closed gripper, a scene
it was not trained on: it sent more plans and answered ``<no_object>`` in stretches, and those
refusals were all the log showed.
``exit_on_success`` sets ``finished``: the node's process (and ``posevla run sim-demo``) ends.
Subscribes ``/arm_controller/joint_trajectory`` and ``/gripper_controller/joint_trajectory``
(trajectory_msgs/JointTrajectory; a new one replaces the running one, like
joint_trajectory_controller). Services ``/sim/reset`` (posevla_ros/srv/ResetEpisode: a task
family or an instruction the sim can stage, see posevla_core.sim.tasks.parse_task) and
``/sim/success`` (std_srvs/Trigger).

``mode: robot`` makes the node a hardware stand-in, the way a real arm's drivers look to
posevla: camera + /joint_states out, trajectories in, stamps from the wall clock, the camera
fixed at its nominal pose (config/robots/sim_panda.yaml's camera_to_base), and NO /clock,
/sim/camera_pose, /sim/reset or /sim/success. Real-mode collect and evaluate are tested
against it.

In-process callers (runner, teleop collect) use ``node.env`` under ``with node.lock:``.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
from geometry_msgs.msg import PoseStamped, TransformStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from posevla_core.geometry import se3
from posevla_core.sim.camera import CameraPlacement
from posevla_core.sim.factory import MUJOCO, SIM_ROBOT, camera_choice, make_env, parse_sim, robot_config
from posevla_core.sim.mujoco import options as sim_options
from posevla_core.sim.mujoco.env import SimEnv
from posevla_core.sim.mujoco.look import SceneLook
from posevla_ros import params
from posevla_ros.nodes.main import run_node
from posevla_ros.ros_io import conversions as conv
from posevla_ros.ros_io.topics import INSTRUCTION_QOS, TOPIC_INSTRUCTION, TOPIC_JOINT_STATES, camera_topics
from posevla_ros.srv import ResetEpisode

# what an episode's end holds (hold_on_success): the executor's stop, the policy's pause
HOLD_SERVICES = ("/posevla/stop", "/posevla/pause")


class SimNode(Node):
    def __init__(self, node_name: str = "sim_node", env=None, start_thread: bool = True, **kwargs) -> None:
        super().__init__(node_name, **kwargs)

        for name, default, desc in params.SIM_PARAMS:
            if not self.has_parameter(name):
                self.declare_parameter(name, default, ParameterDescriptor(description=desc))
        self.p = {name: self.get_parameter(name).value for name, _, _ in params.SIM_PARAMS}

        simulated = robot_config(self.p["sim"], SIM_ROBOT)   # sim_panda, robosuite_panda, robosuite_ur5e, ...
        if self.p["robot"] and Path(str(self.p["robot"])).stem != simulated:
            self.get_logger().warn(f"robot {self.p['robot']!r}: sim {self.p['sim']!r} simulates {simulated}; using it")
        if self.p["mode"] not in ("sim", "robot"):
            raise ValueError(f"sim_node mode {self.p['mode']!r}: use sim | robot")
        self.robot_mode = self.p["mode"] == "robot"
        self.lock = threading.RLock()
        if env is None:
            placement = CameraPlacement.parse(self.p["camera_pose"], self.p["camera_fov_deg"])  # ValueError: one line
            camera = camera_choice(self.p["sim"], self.p["sim_camera"], placement)              # ValueError: one line
            look = SceneLook.parse(self.p["scene_look"])
            scene_options = sim_options.scene_options(*(self.p[k] for k in sim_options.DEFAULTS))  # ValueError: one line
            if scene_options and parse_sim(self.p["sim"]).backend != MUJOCO:
                raise ValueError(f"{' / '.join(scene_options)}: the mujoco scene only, not sim {self.p['sim']!r}")
            if look is not None and parse_sim(self.p["sim"]).backend != MUJOCO:
                raise ValueError(f"scene_look: the mujoco scene only, not sim {self.p['sim']!r}")
            if look is not None or scene_options:
                env = SimEnv(width=int(self.p["width"]), height=int(self.p["height"]), default_task=self.p["task"],
                             camera_jitter=not self.robot_mode, camera=placement, look=look, **scene_options)
            else:   # robosuite with an unknown sim_camera: ValueError, one line naming its cameras
                env = make_env(self.p["sim"], width=int(self.p["width"]), height=int(self.p["height"]),
                               default_task=self.p["task"], camera_jitter=not self.robot_mode, camera=camera)
        self.env = env
        self.sim = env
        self.instruction = ""
        ns = str(self.p["camera_ns"]).rstrip("/")
        self.pub_clock = None if self.robot_mode else self.create_publisher(Clock, "/clock", 10)
        self.pub_rgb = self.create_publisher(Image, f"{ns}/color/image_raw", 5)
        self.pub_depth = self.create_publisher(Image, f"{ns}/aligned_depth_to_color/image_raw", 5)
        self.pub_info = self.create_publisher(CameraInfo, f"{ns}/color/camera_info", 5)
        self.pub_js = self.create_publisher(JointState, TOPIC_JOINT_STATES, 20)
        wrist = camera_topics(self.p["wrist_camera_ns"]) if self.p["wrist_camera_ns"] else {}
        self.pub_wrist = [self.create_publisher(T, wrist[k], 5) for k, T in
                          (("rgb", Image), ("depth", Image), ("info", CameraInfo))] if wrist else []
        self.pub_cam_pose = self.pub_tf = self.pub_instruction = None
        if not self.robot_mode:
            self.pub_cam_pose = self.create_publisher(PoseStamped, "/sim/camera_pose", 5)
            try:
                # tf2_msgs: optional, /tf is published when it imports
                from tf2_msgs.msg import TFMessage

                self.pub_tf = self.create_publisher(TFMessage, "/tf", 10)
            except ImportError:
                pass
        if self.p["publish_instruction"]:
            self.pub_instruction = self.create_publisher(String, TOPIC_INSTRUCTION, INSTRUCTION_QOS)
        self.create_subscription(JointTrajectory, self.p["arm_topic"], self._on_arm, 10)
        self.create_subscription(JointTrajectory, self.p["gripper_topic"], self._on_gripper, 10)
        if not self.robot_mode:
            self.create_service(ResetEpisode, "/sim/reset", self._on_reset)
            self.create_service(Trigger, "/sim/success", self._on_success)
        self._hold_clients = ([self.create_client(Trigger, name) for name in HOLD_SERVICES]
                              if self.p["hold_on_success"] and not self.robot_mode else [])
        self._msgs = (Clock, JointState)
        # the current episode's first success (cleared at every reset); ``finished``: exit_on_success fired
        self.succeeded = threading.Event()
        self.finished = threading.Event()
        self.success_after_s: float | None = None     # sim seconds from the reset to the first success
        with self.lock:
            spec = self.env.reset(int(self.p["seed"]), self.p["task"])
            self.instruction = spec.instruction
            self._episode_t0 = self.env.time
        self._announce(spec.instruction)
        self._next_image = 0.0
        self._next_js = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sim-physics", daemon=True)
        self.frames_published = 0
        self.step_errors = 0        # physics chunks that raised (logged "sim step failed")
        if start_thread:
            self._thread.start()
        if self.robot_mode:
            pos, q = se3.split_T(self.env.camera_pose_in_base())
            self.get_logger().info(f"hardware stand-in ready (mode robot): camera_to_base translation "
                                   f"{np.round(pos, 6).tolist()} rotation_xyzw {np.round(q, 6).tolist()}")
        else:
            self.get_logger().info(f"sim ready: task {spec.task!r}, seed {spec.seed}: {spec.instruction!r}")

    def _announce(self, instruction: str) -> None:
        if self.pub_instruction is not None:
            self.pub_instruction.publish(String(data=instruction))

    # ----------------------------------------------------------------- physics loop
    def _loop(self) -> None:
        chunk = float(self.p["physics_chunk_s"])
        rtf = max(float(self.p["real_time_factor"]), 1e-3)
        wall0, sim0 = time.monotonic(), self.env.time
        while not self._stop.is_set():
            try:
                with self.lock:
                    if self.env.time < sim0 - 1e-9:   # reset went back in time
                        wall0, sim0 = time.monotonic(), self.env.time
                    self.env.step(chunk)
                    self._publish(self.env.time)
                    self._check_success()
                    t_sim = self.env.time
                ahead = (t_sim - sim0) / rtf - (time.monotonic() - wall0)
                if ahead > 0:
                    self._stop.wait(ahead)
                elif ahead < -0.5:  # too slow for real time: don't try to catch up
                    wall0, sim0 = time.monotonic(), t_sim
            except Exception as e:  # noqa: BLE001 - keep the node alive, say why
                self.step_errors += 1
                self.get_logger().error(f"sim step failed: {e!r}")
                self._stop.wait(0.5)

    def step_once(self, dt: float) -> None:
        """Advance and publish without the thread (tests / lock-step drivers)."""
        with self.lock:
            self.env.step(dt)
            self._publish(self.env.time)
            self._check_success()

    def _check_success(self) -> None:
        """After a physics chunk (under ``lock``): the episode's first success is logged once and
        acted on (``hold_on_success``, ``exit_on_success``; module docstring)."""
        if self.robot_mode or self.succeeded.is_set() or not self.env.success():
            return
        self.success_after_s = self.env.time - self._episode_t0
        self.succeeded.set()
        spec = self.env.spec
        self.get_logger().info(f"episode SUCCESS: {spec.instruction!r} (task {spec.task}, seed {spec.seed}) "
                               f"after {self.success_after_s:.1f} s sim time")
        if self._hold_clients:
            missing = [c.srv_name for c in self._hold_clients if not c.service_is_ready()]
            for c in self._hold_clients:
                c.call_async(Trigger.Request())
            self.get_logger().info("hold_on_success: the robot holds and the policy pauses ("
                                   + ", ".join(HOLD_SERVICES) + ")"
                                   + (f"; not available: {', '.join(missing)}" if missing else ""))
        if self.p["exit_on_success"]:
            self.get_logger().info("exit_on_success: ending")
            self.finished.set()

    def _publish(self, t: float) -> None:
        Clock, JointState = self._msgs
        if self.robot_mode:        # a robot's drivers stamp with the wall clock; the schedule stays sim time
            stamp = self.get_clock().now().to_msg()
        else:
            stamp = conv.sec_to_stamp(max(t, 0.0))
            self.pub_clock.publish(Clock(clock=stamp))
        if t + 1e-9 >= self._next_js:
            self._next_js = t + 1.0 / max(float(self.p["joint_state_rate_hz"]), 1e-3)
            names, q, v = self.env.joint_state()
            js = JointState(name=names, position=[float(x) for x in q], velocity=[float(x) for x in v])
            js.header.stamp = stamp
            self.pub_js.publish(js)
        if t + 1e-9 >= self._next_image:
            self._next_image = t + 1.0 / max(float(self.p["image_rate_hz"]), 1e-3)
            self._publish_camera(stamp)

    def _publish_camera(self, stamp) -> None:
        rgb, depth, K = self.env.render()
        h, w = rgb.shape[:2]
        frame = self.p["camera_frame"]
        self.pub_rgb.publish(conv.rgb_to_image(rgb, stamp, frame))
        self.pub_depth.publish(conv.depth_to_image(depth, stamp, frame))
        self.pub_info.publish(conv.K_to_camera_info(K, w, h, stamp, frame))
        self.frames_published += 1
        if self.pub_wrist:      # the wrist camera (wrist_camera_ns), same stamp
            rgb_w, depth_w, K_w = self.env.render(wrist=True)
            hw, ww = rgb_w.shape[:2]
            frame_w = self.p["wrist_camera_frame"]
            for pub, m in zip(self.pub_wrist, (conv.rgb_to_image(rgb_w, stamp, frame_w),
                                               conv.depth_to_image(depth_w, stamp, frame_w),
                                               conv.K_to_camera_info(K_w, ww, hw, stamp, frame_w))):
                pub.publish(m)
        if self.pub_cam_pose is None:
            return
        ps = PoseStamped(pose=conv.matrix_to_pose_msg(self.env.camera_pose_in_base()))
        ps.header.stamp, ps.header.frame_id = stamp, self.p["base_frame"]
        self.pub_cam_pose.publish(ps)
        if self.pub_tf is not None:
            # tf2_msgs: optional, /tf is published when it imports
            from tf2_msgs.msg import TFMessage

            tf = TransformStamped()
            tf.header = ps.header
            tf.child_frame_id = frame
            tf.transform.translation.x, tf.transform.translation.y, tf.transform.translation.z = (
                ps.pose.position.x, ps.pose.position.y, ps.pose.position.z)
            tf.transform.rotation = ps.pose.orientation
            self.pub_tf.publish(TFMessage(transforms=[tf]))

    # ----------------------------------------------------------------- callbacks
    def _trajectory(self, msg):
        names = list(msg.joint_names)
        times = [conv.stamp_to_sec(pt.time_from_start) for pt in msg.points]
        pos = [list(pt.positions) for pt in msg.points]
        if any(len(p) != len(names) for p in pos):
            raise ValueError("every point needs one position per joint")
        vel = None
        if msg.points and all(len(pt.velocities) == len(names) for pt in msg.points):
            vel = [list(pt.velocities) for pt in msg.points]
        return names, times, pos, vel

    def _on_arm(self, msg) -> None:
        try:
            names, times, pos, vel = self._trajectory(msg)
            with self.lock:
                stamp = conv.stamp_to_sec(msg.header.stamp)     # nonzero: the start time (as the real controller)
                self.env.send_arm_trajectory(names, times, pos, vel, stamp if stamp > 0 else None)
        except Exception as e:  # noqa: BLE001
            self.get_logger().warn(f"arm trajectory rejected: {e}")

    def _on_gripper(self, msg) -> None:
        try:
            names, times, pos, _ = self._trajectory(msg)
            with self.lock:
                self.env.send_gripper_trajectory(names, times, pos)
        except Exception as e:  # noqa: BLE001
            self.get_logger().warn(f"gripper trajectory rejected: {e}")

    def _on_reset(self, req, res):
        clocks = self.count_publishers("/clock")
        if clocks > 1:       # another sim on this domain: it would answer our resets and we its
            res.success, res.instruction = False, ""
            res.message = (f"reset refused: {clocks} simulators publish /clock on ROS_DOMAIN_ID="
                           f"{os.environ.get('ROS_DOMAIN_ID', '0')}; they would answer each other's resets and "
                           f"record each other's camera: give each run its own ROS_DOMAIN_ID")
            self.get_logger().error(res.message)
            return res
        try:
            with self.lock:
                spec = self.env.reset(int(req.seed), req.task or self.p["task"])
                self._next_image = 0.0
                self._next_js = 0.0
                self._episode_t0 = self.env.time
                self.success_after_s = None
                self.succeeded.clear()
                self._publish(self.env.time)
            self.instruction = spec.instruction
            self._announce(spec.instruction)
            res.success, res.instruction = True, spec.instruction
            res.message = f"task {spec.task}, seed {spec.seed}, target {spec.target}"
        except Exception as e:  # noqa: BLE001
            res.success, res.message, res.instruction = False, f"reset failed: {e}", ""
        return res

    def _on_success(self, req, res):
        with self.lock:
            ok = bool(self.env.success())
            spec = self.env.spec
        res.success = ok
        res.message = f"{spec.task} {spec.target}: {'success' if ok else 'not yet'}" if spec else "no episode"
        return res

    def destroy_node(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        with self.lock:
            self.env.close()
        return super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    return run_node(SimNode, argv, done=lambda n: n.finished.is_set())


if __name__ == "__main__":
    raise SystemExit(main())
