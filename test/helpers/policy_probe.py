"""Probe a policy_node running in its own process: publish RGB-D frames on the default
camera topics (plus any extra cameras) until it answers with a PosePrediction (or dies). Shared by the tests that
serve a checkpoint over real topics."""
from __future__ import annotations

import numpy as np
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from posevla_ros.ros_io import conversions as conv
from posevla_ros.msg import PosePrediction
from posevla_ros.ros_io.topics import camera_topics


def first_prediction(ros_context, proc, spin_until, rgb: np.ndarray, depth: np.ndarray, K: np.ndarray,
                     frame_id: str, attempts: int = 100, extra: list[dict] | None = None) -> list:
    """The predictions received (empty when the process died or never answered). ``extra``:
    more cameras, each {"ns", "rgb", "depth", "K", "frame_id"}, published with the same stamp."""
    cams = [{"ns": "/camera", "rgb": rgb, "depth": depth, "K": K, "frame_id": frame_id}] + list(extra or [])
    io = Node("policy_probe_io", context=ros_context)
    preds: list = []
    io.create_subscription(PosePrediction, "/posevla/prediction", preds.append, QoSProfile(depth=10))
    pubs = {}
    for c in cams:
        t = camera_topics(c["ns"])
        for key, T in (("rgb", Image), ("depth", Image), ("info", CameraInfo)):
            pubs[(c["ns"], key)] = io.create_publisher(T, t[key], qos_profile_sensor_data)
    ex = MultiThreadedExecutor(context=ros_context)
    ex.add_node(io)
    try:
        if not spin_until(ex, lambda: all(p.get_subscription_count() for p in pubs.values()) or not proc.alive(),
                          120):
            return preds
        for _ in range(attempts):
            if preds or not proc.alive():
                break
            stamp = io.get_clock().now().to_msg()
            for c in cams:
                H, W = c["rgb"].shape[:2]
                msgs = {"rgb": conv.rgb_to_image(c["rgb"]), "depth": conv.depth_to_image(c["depth"]),
                        "info": conv.K_to_camera_info(c["K"], W, H)}
                for k, m in msgs.items():
                    m.header.stamp, m.header.frame_id = stamp, c["frame_id"]
                    pubs[(c["ns"], k)].publish(m)
            spin_until(ex, lambda: preds, 2.0)
        return preds
    finally:
        ex.shutdown()
        io.destroy_node()
