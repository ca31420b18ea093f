"""sim_node: the MuJoCo Panda scene (posevla_core.sim.SimEnv) as a ROS 2 node, stepped in
real time (``real_time_factor``) in its own thread.

Publishes (stamps = sim time)
- ``/clock`` (rosgraph_msgs/Clock) every physics chunk
- ``/camera/color/image_raw`` (rgb8, frame ``camera_color_optical_frame``),
  ``/camera/aligned_depth_to_color/image_raw`` (32FC1 meters, NaN = no reading),
  ``/camera/color/camera_info`` at ``image_rate_hz`` (sim time)
- ``/joint_states`` (7 arm + 2 finger joints) at ``joint_state_rate_hz``
- ``/sim/camera_pose`` (geometry_msgs/PoseStamped in ``base_frame``: the optical frame's
  pose, randomized per episode); also on /tf when tf2_msgs imports
Subscribes ``/arm_controller/joint_trajectory`` and ``/gripper_controller/joint_trajectory``
(trajectory_msgs/JointTrajectory; a new one replaces the running one, like
joint_trajectory_controller). Services ``/sim/reset`` (posevla_ros/srv/ResetEpisode) and
``/sim/success`` (std_srvs/Trigger).

In-process callers (runner, teleop collect) use ``node.env`` under ``with node.lock:``.
"""
from __future__ import annotations

import threading
import time

import numpy as np
from rclpy.node import Node

from posevla_core import se3

SIM_PARAMS = [
    ("robot", "panda", "robot config name (only panda is simulated)"),
    ("task", "pick", "default task family of /sim/reset with an empty task: pick | put"),
    ("seed", 0, "seed of the first episode (reset at start)"),
    ("width", 224, "image width (px)"),
    ("height", 224, "image height (px)"),
    ("image_rate_hz", 10.0, "camera rate (sim time)"),
    ("joint_state_rate_hz", 50.0, "joint state rate (sim time)"),
    ("real_time_factor", 1.0, "sim seconds per wall second"),
    ("physics_chunk_s", 0.01, "sim time advanced per physics chunk (and /clock message)"),
    ("base_frame", "base_link", "robot base frame"),
    ("camera_frame", "camera_color_optical_frame", "optical frame of the images"),
    ("camera_ns", "/camera", "namespace of the camera topics"),
    ("arm_topic", "/arm_controller/joint_trajectory", "arm JointTrajectory topic"),
    ("gripper_topic", "/gripper_controller/joint_trajectory", "gripper JointTrajectory topic"),
]


def _stamp(t: float):
    from builtin_interfaces.msg import Time

    ns = int(round(max(t, 0.0) * 1e9))
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def _duration_s(d) -> float:
    return float(d.sec) + float(d.nanosec) * 1e-9


class SimNode(Node):
    def __init__(self, node_name: str = "sim_node", env=None, start_thread: bool = True, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import CameraInfo, Image, JointState
        from geometry_msgs.msg import PoseStamped
        from std_srvs.srv import Trigger
        from trajectory_msgs.msg import JointTrajectory

        from posevla_ros.srv import ResetEpisode

        for name, default, desc in SIM_PARAMS:
            if not self.has_parameter(name):
                from rcl_interfaces.msg import ParameterDescriptor

                self.declare_parameter(name, default, ParameterDescriptor(description=desc))
        self.p = {name: self.get_parameter(name).value for name, _, _ in SIM_PARAMS}
        if self.p["robot"] not in ("panda", "") and not str(self.p["robot"]).endswith("panda.yaml"):
            self.get_logger().warn(f"robot {self.p['robot']!r}: only the Panda is simulated; using it")
        self.lock = threading.RLock()
        if env is None:
            from posevla_core.sim.env import SimEnv

            env = SimEnv(width=int(self.p["width"]), height=int(self.p["height"]), default_task=self.p["task"])
        self.env = env
        self.sim = env
        self.instruction = ""
        ns = str(self.p["camera_ns"]).rstrip("/")
        self.pub_clock = self.create_publisher(Clock, "/clock", 10)
        self.pub_rgb = self.create_publisher(Image, f"{ns}/color/image_raw", 5)
        self.pub_depth = self.create_publisher(Image, f"{ns}/aligned_depth_to_color/image_raw", 5)
        self.pub_info = self.create_publisher(CameraInfo, f"{ns}/color/camera_info", 5)
        self.pub_js = self.create_publisher(JointState, "/joint_states", 20)
        self.pub_cam_pose = self.create_publisher(PoseStamped, "/sim/camera_pose", 5)
        self.pub_tf = None
        try:
            from tf2_msgs.msg import TFMessage

            self.pub_tf = self.create_publisher(TFMessage, "/tf", 10)
        except ImportError:
            pass
        self.create_subscription(JointTrajectory, self.p["arm_topic"], self._on_arm, 10)
        self.create_subscription(JointTrajectory, self.p["gripper_topic"], self._on_gripper, 10)
        self.create_service(ResetEpisode, "/sim/reset", self._on_reset)
        self.create_service(Trigger, "/sim/success", self._on_success)
        self._msgs = (Clock, Image, CameraInfo, JointState, PoseStamped)
        with self.lock:
            spec = self.env.reset(int(self.p["seed"]), self.p["task"])
            self.instruction = spec.instruction
        self._next_image = 0.0
        self._next_js = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sim-physics", daemon=True)
        self.frames_published = 0
        if start_thread:
            self._thread.start()
        self.get_logger().info(f"sim ready: task {spec.task!r}, seed {spec.seed}: {spec.instruction!r}")

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
                    t_sim = self.env.time
                ahead = (t_sim - sim0) / rtf - (time.monotonic() - wall0)
                if ahead > 0:
                    self._stop.wait(ahead)
                elif ahead < -0.5:  # too slow for real time: don't try to catch up
                    wall0, sim0 = time.monotonic(), t_sim
            except Exception as e:  # noqa: BLE001 - keep the node alive, say why
                self.get_logger().error(f"sim step failed: {e!r}")
                self._stop.wait(0.5)

    def step_once(self, dt: float) -> None:
        """Advance and publish without the thread (tests / lock-step drivers)."""
        with self.lock:
            self.env.step(dt)
            self._publish(self.env.time)

    def _publish(self, t: float) -> None:
        Clock, Image, CameraInfo, JointState, PoseStamped = self._msgs
        stamp = _stamp(t)
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
        Clock, Image, CameraInfo, JointState, PoseStamped = self._msgs
        rgb, depth, K = self.env.render()
        h, w = rgb.shape[:2]
        frame = self.p["camera_frame"]
        img = Image(height=h, width=w, encoding="rgb8", is_bigendian=0, step=w * 3,
                    data=np.ascontiguousarray(rgb).tobytes())
        img.header.stamp, img.header.frame_id = stamp, frame
        dep = Image(height=h, width=w, encoding="32FC1", is_bigendian=0, step=w * 4,
                    data=np.ascontiguousarray(depth, dtype="<f4").tobytes())
        dep.header.stamp, dep.header.frame_id = stamp, frame
        info = CameraInfo(height=h, width=w, distortion_model="plumb_bob")
        info.header.stamp, info.header.frame_id = stamp, frame
        info.d = [0.0] * 5
        info.k = [float(x) for x in K.reshape(-1)]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [float(K[0, 0]), 0.0, float(K[0, 2]), 0.0, 0.0, float(K[1, 1]), float(K[1, 2]), 0.0,
                  0.0, 0.0, 1.0, 0.0]
        pos, q = se3.split_T(self.env.camera_pose_in_base())
        ps = PoseStamped()
        ps.header.stamp, ps.header.frame_id = stamp, self.p["base_frame"]
        ps.pose.position.x, ps.pose.position.y, ps.pose.position.z = (float(x) for x in pos)
        (ps.pose.orientation.x, ps.pose.orientation.y, ps.pose.orientation.z,
         ps.pose.orientation.w) = (float(x) for x in q)
        self.pub_rgb.publish(img)
        self.pub_depth.publish(dep)
        self.pub_info.publish(info)
        self.pub_cam_pose.publish(ps)
        if self.pub_tf is not None:
            from geometry_msgs.msg import TransformStamped
            from tf2_msgs.msg import TFMessage

            tf = TransformStamped()
            tf.header = ps.header
            tf.child_frame_id = frame
            tf.transform.translation.x, tf.transform.translation.y, tf.transform.translation.z = (
                ps.pose.position.x, ps.pose.position.y, ps.pose.position.z)
            tf.transform.rotation = ps.pose.orientation
            self.pub_tf.publish(TFMessage(transforms=[tf]))
        self.frames_published += 1

    # ----------------------------------------------------------------- callbacks
    def _trajectory(self, msg):
        names = list(msg.joint_names)
        times = [_duration_s(pt.time_from_start) for pt in msg.points]
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
                stamp = _duration_s(msg.header.stamp)     # nonzero: the start time (as the real controller)
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
        try:
            with self.lock:
                spec = self.env.reset(int(req.seed), req.task or self.p["task"])
                self._next_image = 0.0
                self._next_js = 0.0
                self._publish(self.env.time)
            self.instruction = spec.instruction
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
    from posevla_ros.node_main import run_node

    return run_node(SimNode, argv)


if __name__ == "__main__":
    raise SystemExit(main())
