"""Probe a policy_node running in its own process: publish RGB-D frames on the default
camera topics until it answers with a PosePrediction (or dies). Shared by the tests that
serve a checkpoint over real topics."""
from __future__ import annotations

import numpy as np
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from posevla_ros import conversions as conv
from posevla_ros.msg import PosePrediction


def first_prediction(ros_context, proc, spin_until, rgb: np.ndarray, depth: np.ndarray, K: np.ndarray,
                     frame_id: str, attempts: int = 100) -> list:
    """The predictions received (empty when the process died or never answered)."""
    H, W = rgb.shape[:2]
    io = Node("policy_probe_io", context=ros_context)
    preds: list = []
    io.create_subscription(PosePrediction, "/posevla/prediction", preds.append, QoSProfile(depth=10))
    pubs = {t: io.create_publisher(T, n, qos_profile_sensor_data) for t, T, n in [
        ("rgb", Image, "/camera/color/image_raw"), ("d", Image, "/camera/aligned_depth_to_color/image_raw"),
        ("i", CameraInfo, "/camera/color/camera_info")]}
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
            msgs = {"rgb": conv.rgb_to_image(rgb), "d": conv.depth_to_image(depth), "i": conv.K_to_camera_info(K, W, H)}
            for k, m in msgs.items():
                m.header.stamp, m.header.frame_id = stamp, frame_id
                pubs[k].publish(m)
            spin_until(ex, lambda: preds, 2.0)
        return preds
    finally:
        ex.shutdown()
        io.destroy_node()
