"""Topic names and QoS profiles that several nodes must agree on (one home, so a publisher
and a subscriber can never disagree on a profile and silently miss each other).

``/posevla/instruction`` is latched: RELIABLE + TRANSIENT_LOCAL, depth 1, on every
publisher and subscriber. A policy (or recorder) that starts after the operator, the
evaluator or the sim-demo graph published the instruction still gets the last one. A
VOLATILE subscriber still receives from these publishers; a VOLATILE *publisher* would be
incompatible with the TRANSIENT_LOCAL subscribers, so always publish with ``INSTRUCTION_QOS``.
"""
from __future__ import annotations

from typing import Any

TOPIC_INSTRUCTION = "/posevla/instruction"
TOPIC_PREDICTION = "/posevla/prediction"     # posevla_ros/msg/PosePrediction: policy -> executor, recorder
TOPIC_JOINT_STATES = "/joint_states"         # sensor_msgs/JointState: the arm (or sim_node) -> every node
DEFAULT_CAMERA_NAMESPACE = "/camera"
#: an RGB-D camera's topics relative to its namespace (the realsense2_camera layout)
CAMERA_STREAMS = {"rgb": "color/image_raw", "depth": "aligned_depth_to_color/image_raw", "info": "color/camera_info"}


def camera_topics(namespace: str = DEFAULT_CAMERA_NAMESPACE) -> dict[str, str]:
    """An RGB-D camera's topics under ``namespace``: ``/camera`` -> /camera/color/image_raw,
    /camera/aligned_depth_to_color/image_raw, /camera/color/camera_info."""
    ns = "/" + namespace.strip().strip("/")
    if ns == "/":
        raise ValueError(f"camera namespace {namespace!r} is empty (e.g. /camera)")
    return {k: f"{ns}/{t}" for k, t in CAMERA_STREAMS.items()}

_QOS: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    """``INSTRUCTION_QOS``, built on first use: the topic names above stay importable without
    rclpy (the parameter tables in posevla_ros.params name them)."""
    if name != "INSTRUCTION_QOS":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name not in _QOS:
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy  # rclpy: optional

        _QOS[name] = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                                durability=DurabilityPolicy.TRANSIENT_LOCAL)
    return _QOS[name]
