"""The policy_node tests' setup: a fixed 48x64 RGB-D frame (``RGB``, ``DEPTH``, ``K``, ``H``,
``W``, drawn from ``RNG``) in the camera ``FRAME``, ``color_msg`` (that frame as an rgb8,
row-padded bgr8 or mono8 Image; ``padded`` adds the padding), and ``Harness`` (a PolicyNode
plus a test node that publishes camera data and instructions and records predictions and
markers, over DDS).

Used by test/ros/test_policy_node.py and test/ros/test_policy_server.py."""
import numpy as np
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from posevla_ros.msg import PosePrediction
from posevla_ros.nodes.policy_node import PolicyNode
from posevla_ros.ros_io import conversions as conv
from posevla_ros.ros_io.topics import INSTRUCTION_QOS, TOPIC_INSTRUCTION

H, W = 48, 64
K = np.array([[60.0, 0, W / 2], [0, 60.0, H / 2], [0, 0, 1]])
FRAME = "camera_color_optical_frame"
RNG = np.random.default_rng(1)
RGB = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
DEPTH = RNG.uniform(0.4, 1.5, (H, W)).astype(np.float32)


def padded(msg: Image, pad: int) -> Image:
    rows = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)
    out = np.zeros((msg.height, msg.step + pad), np.uint8)
    out[:, :msg.step] = rows
    msg.data, msg.step = out.tobytes(), msg.step + pad
    return msg


def color_msg(kind: str) -> Image:
    if kind == "rgb8":
        return conv.rgb_to_image(RGB)
    if kind == "bgr8_padded":
        return padded(conv.rgb_to_image(RGB, encoding="bgr8"), 13)
    if kind == "mono8":
        m = Image(height=H, width=W, encoding="mono8", step=W, data=RGB[..., 1].tobytes())
        return m
    raise ValueError(kind)


class Harness:
    """A PolicyNode plus a test node that publishes camera data and records outputs."""

    def __init__(self, ctx, model, **params):
        # Frames are never dropped for age here (test_stale_and_no_instruction sets its own limit):
        # on a loaded CI machine a good frame once sat 6.8 s before the node got to it.
        overrides = dict(rate_hz=0.0, max_image_age_s=60.0, use_depth=True, sync_slop_s=0.01)
        overrides.update(params)
        self.policy = PolicyNode(model=model, context=ctx,
                                 parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])
        self.io = Node("policy_test_io", context=ctx)
        self.pub_rgb = self.io.create_publisher(Image, "/camera/color/image_raw", qos_profile_sensor_data)
        self.pub_depth = self.io.create_publisher(Image, "/camera/aligned_depth_to_color/image_raw",
                                                  qos_profile_sensor_data)
        self.pub_info = self.io.create_publisher(CameraInfo, "/camera/color/camera_info", qos_profile_sensor_data)
        self.pub_instr = self.io.create_publisher(String, TOPIC_INSTRUCTION, INSTRUCTION_QOS)
        self.preds, self.markers = [], []
        self.io.create_subscription(PosePrediction, "/posevla/prediction", self.preds.append, QoSProfile(depth=100))
        self.io.create_subscription(MarkerArray, "/posevla/markers", self.markers.append, QoSProfile(depth=100))
        self.ex = MultiThreadedExecutor(num_threads=3, context=ctx)
        self.ex.add_node(self.policy)
        self.ex.add_node(self.io)

    def now(self):
        return self.io.get_clock().now().to_msg()

    def connected(self, spin_until):
        return spin_until(self.ex, lambda: all(p.get_subscription_count() > 0 for p in
                                               (self.pub_rgb, self.pub_depth, self.pub_info, self.pub_instr))
                          and self.io.count_publishers("/posevla/prediction") > 0, 30)

    def instruct(self, spin_until, text="pick up the red cube"):
        self.pub_instr.publish(String(data=text))
        return spin_until(self.ex, lambda: self.policy.instruction == text, 30)

    def send(self, rgb: Image, depth: Image | None = None, info: CameraInfo | None = None, stamp=None):
        stamp = stamp or self.now()
        info = info or conv.K_to_camera_info(K, W, H)
        for m in (rgb, depth, info):
            if m is not None:
                m.header.stamp, m.header.frame_id = stamp, FRAME
        self.pub_info.publish(info)
        if depth is not None:
            self.pub_depth.publish(depth)
        self.pub_rgb.publish(rgb)
        return stamp

    def settle(self, spin_until, stamp):
        """Spin until the node has finished with the frame stamped ``stamp`` (predicted,
        refused or paused): waits on the node's own record, never on a quiet period."""
        key = (stamp.sec, stamp.nanosec)
        return spin_until(self.ex, lambda: self.policy.last_done_stamp() == key, 60)

    def close(self):
        self.ex.shutdown()
        self.policy.destroy_node()
        self.io.destroy_node()
