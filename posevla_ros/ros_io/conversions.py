"""ROS messages <-> posevla_core types. The one place nodes convert images, intrinsics,
poses, stamps, joint states, trajectories and predictions.

Images: cv_bridge when it imports (every ROS install), else ``posevla_core.image``, which
decodes the raw buffer honoring ``encoding``, ``step`` (row padding) and ``is_bigendian``.
Either way colour comes back as RGB uint8 HxWx3 and depth as float32 meters with NaN where
there is no reading (16UC1 millimeters and 32FC1 meters; 0 = no reading).
"""
from __future__ import annotations

import math

import numpy as np

from posevla_core.image import COLOR_ENCODINGS, DEPTH_ENCODINGS, decode_color, decode_depth
from posevla_core.poses import Pose, Prediction, Waypoint

try:  # a real ROS install; absent in the wheel-based venv
    from cv_bridge import CvBridge

    _BRIDGE = CvBridge()
except Exception:  # noqa: BLE001 - ImportError, or a cv_bridge built against another numpy
    _BRIDGE = None

HAVE_CV_BRIDGE = _BRIDGE is not None


# ---------------------------------------------------------------- time
def stamp_to_sec(stamp) -> float:
    """builtin_interfaces Time or Duration (both sec + nanosec) -> seconds."""
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def _sec_nanosec(t: float) -> tuple[int, int]:
    """Seconds -> (sec, nanosec) rounded to the nearest nanosecond, nanosec in [0, 1e9)
    (floor division, so 1.9999999999 s is (2, 0), never (1, 1e9))."""
    ns = int(round(float(t) * 1e9))
    return ns // 1_000_000_000, ns % 1_000_000_000


def sec_to_stamp(t: float):
    """Seconds -> builtin_interfaces/Time."""
    # ROS messages: on use, so the image and stamp helpers work without the generated ones (pip install .)
    from builtin_interfaces.msg import Time

    sec, nanosec = _sec_nanosec(t)
    return Time(sec=sec, nanosec=nanosec)


def sec_to_duration(t: float):
    """Seconds -> builtin_interfaces/Duration (``time_from_start``, marker lifetimes)."""
    # ROS messages: on use, so the image and stamp helpers work without the generated ones (pip install .)
    from builtin_interfaces.msg import Duration

    sec, nanosec = _sec_nanosec(t)
    return Duration(sec=sec, nanosec=nanosec)


duration_to_sec = stamp_to_sec   # same two fields


# ---------------------------------------------------------------- images
def _check_image(msg, encodings) -> None:
    if msg.encoding not in encodings:
        raise ValueError(f"unsupported image encoding {msg.encoding!r} (expected one of {encodings})")
    if msg.height == 0 or msg.width == 0:
        raise ValueError(f"empty image {msg.width}x{msg.height}")


def image_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8, mono8) -> RGB uint8 HxWx3."""
    _check_image(msg, COLOR_ENCODINGS)
    if _BRIDGE is not None:
        img = _BRIDGE.imgmsg_to_cv2(msg, desired_encoding="rgb8")
        return np.ascontiguousarray(img, dtype=np.uint8)

    return decode_color(bytes(msg.data), msg.height, msg.width, msg.encoding, msg.step,
                        bool(msg.is_bigendian))


def image_to_depth(msg) -> np.ndarray:
    """sensor_msgs/Image (16UC1 mm, 32FC1 m) -> float32 meters HxW, NaN = no reading."""
    _check_image(msg, DEPTH_ENCODINGS)
    if _BRIDGE is not None:
        raw = np.asarray(_BRIDGE.imgmsg_to_cv2(msg, desired_encoding="passthrough"))
        depth = raw.astype(np.float32) * (0.001 if raw.dtype == np.uint16 else 1.0)
        depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
        return depth

    return decode_depth(bytes(msg.data), msg.height, msg.width, msg.encoding, msg.step,
                        bool(msg.is_bigendian))


def camera_info_to_K(msg, width: int | None = None, height: int | None = None) -> np.ndarray:
    """CameraInfo -> 3x3 intrinsics. Checks that fx, fy > 0 and, when given, that the
    CameraInfo size matches the image (a mismatched K would put every pose in the wrong place)."""
    K = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
    if not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0 or K[2, 2] != 1.0:
        raise ValueError(f"invalid CameraInfo K {K.ravel().tolist()}")
    if width is not None and msg.width and msg.height and (msg.width, msg.height) != (width, height):
        raise ValueError(f"CameraInfo is {msg.width}x{msg.height} but the image is {width}x{height}")
    return K


def _with_header(msg, stamp, frame_id: str):
    """Set a message's header (``stamp`` None keeps zero, "now" for most consumers)."""
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    return msg


def rgb_to_image(rgb: np.ndarray, stamp=None, frame_id: str = "", encoding: str = "rgb8"):
    """RGB uint8 HxWx3 -> sensor_msgs/Image in ``encoding`` (rgb8 or bgr8), no padding."""
    # ROS messages: on use, so the image and stamp helpers work without the generated ones (pip install .)
    from sensor_msgs.msg import Image

    arr = np.ascontiguousarray(rgb[..., ::-1] if encoding == "bgr8" else rgb, dtype=np.uint8)
    msg = Image(height=arr.shape[0], width=arr.shape[1], encoding=encoding, is_bigendian=0,
                step=arr.shape[1] * 3)
    msg.data = arr.tobytes()
    return _with_header(msg, stamp, frame_id)


def depth_to_image(depth_m: np.ndarray, stamp=None, frame_id: str = "", encoding: str = "32FC1"):
    """float32 meters (NaN = none) -> sensor_msgs/Image 32FC1 (NaN kept) or 16UC1 (mm, 0 = none)."""
    # ROS messages: on use, so the image and stamp helpers work without the generated ones (pip install .)
    from sensor_msgs.msg import Image

    d = np.asarray(depth_m, dtype=np.float32)
    if encoding == "16UC1":
        arr = np.where(np.isfinite(d), np.clip(np.round(d * 1000.0), 0, 65535), 0).astype("<u2")
        bpp = 2
    else:
        arr, bpp = d.astype("<f4"), 4
    msg = Image(height=d.shape[0], width=d.shape[1], encoding=encoding, is_bigendian=0,
                step=d.shape[1] * bpp)
    msg.data = np.ascontiguousarray(arr).tobytes()
    return _with_header(msg, stamp, frame_id)


def K_to_camera_info(K: np.ndarray, width: int, height: int, stamp=None, frame_id: str = ""):
    # ROS messages: on use, so the image and stamp helpers work without the generated ones (pip install .)
    from sensor_msgs.msg import CameraInfo

    K = np.asarray(K, dtype=float)
    msg = CameraInfo(width=int(width), height=int(height), distortion_model="plumb_bob")
    msg.k = K.ravel().tolist()
    msg.d = [0.0] * 5
    msg.r = np.eye(3).ravel().tolist()
    P = np.zeros((3, 4))
    P[:3, :3] = K
    msg.p = P.ravel().tolist()
    return _with_header(msg, stamp, frame_id)


# ---------------------------------------------------------------- poses
def pose_to_msg(pose: Pose):
    # ROS messages: on use, so the image and stamp helpers work without the generated ones (pip install .)
    from geometry_msgs.msg import Pose as PoseMsg

    m = PoseMsg()
    m.position.x, m.position.y, m.position.z = (float(v) for v in pose.position)
    m.orientation.x, m.orientation.y, m.orientation.z, m.orientation.w = (float(v) for v in pose.quat_xyzw)
    return m


def msg_to_pose(m) -> Pose:
    """geometry_msgs/Pose -> Pose. The quaternion is NOT renormalized away from garbage:
    a zero or non-finite quaternion stays detectable through ``Pose.is_finite``."""
    q = np.array([m.orientation.x, m.orientation.y, m.orientation.z, m.orientation.w], dtype=float)
    p = np.array([m.position.x, m.position.y, m.position.z], dtype=float)
    return Pose(p, q)


def matrix_to_pose_msg(T: np.ndarray):
    return pose_to_msg(Pose.from_matrix(T))


# ---------------------------------------------------------------- predictions
def prediction_to_msg(pred: Prediction, header, instruction: str, inference_ms: float):
    """core Prediction -> PosePrediction. ``header``: frame_id and stamp of the image used.

    A ``<no_object>`` answer (``pred.found`` False) goes out with ``object_found`` false and NO
    waypoints, whatever the model decoded after it: nothing downstream may move on it. An
    unknown 2D box or size (None) is written as zeros (a real box or size is never all zero);
    ``box_u`` / ``box_v`` stay the box center the model gave."""
    # ROS messages: on use, so the image and stamp helpers work without the generated ones (pip install .)
    from geometry_msgs.msg import Vector3

    # ROS messages: on use, so the image and stamp helpers work without the generated ones (pip install .)
    from posevla_ros.msg import PosePrediction, PoseWaypoint

    msg = PosePrediction()
    msg.header = header
    if getattr(pred, "frame_id", ""):      # a base-frame chunk (expert frame: base): say so
        # ROS messages: on use, so the image and stamp helpers work without the generated ones (pip install .)
        from std_msgs.msg import Header

        msg.header = Header(stamp=header.stamp, frame_id=pred.frame_id)
    msg.instruction = instruction
    msg.object_found = bool(pred.found)
    msg.category = str(pred.category)
    msg.box_u, msg.box_v = float(pred.box_uv[0]), float(pred.box_uv[1])
    msg.box = [float(v) for v in (pred.box_xyxy if pred.box_xyxy is not None else (0.0,) * 4)]
    msg.object_pose = pose_to_msg(pred.object_pose)
    size = np.zeros(3) if pred.size is None else np.asarray(pred.size, dtype=float).reshape(3)
    msg.object_size = Vector3(x=float(size[0]), y=float(size[1]), z=float(size[2]))
    if pred.found:
        msg.waypoints = [PoseWaypoint(pose=pose_to_msg(w.pose), gripper=float(w.gripper)) for w in pred.waypoints]
    msg.waypoint_dt = float(pred.waypoint_dt)
    msg.token_ids = [int(t) for t in pred.token_ids]
    msg.inference_ms = float(inference_ms)
    return msg


def msg_to_prediction(msg) -> Prediction:
    """PosePrediction -> core Prediction (camera frame; ``valid`` False if anything is not
    finite). ``found`` is ``object_found``; an all-zero ``box`` / ``object_size`` is None
    (unknown). Waypoints of an ``object_found: false`` message are kept as sent, so the
    executor sees and refuses them."""
    wps = [Waypoint(msg_to_pose(w.pose), float(w.gripper)) for w in msg.waypoints]
    obj = msg_to_pose(msg.object_pose)
    box = np.asarray(msg.box, dtype=float)
    size = np.array([msg.object_size.x, msg.object_size.y, msg.object_size.z], dtype=float)
    finite = obj.is_finite() and all(w.pose.is_finite() and math.isfinite(w.gripper) for w in wps) \
        and math.isfinite(msg.waypoint_dt) and np.all(np.isfinite(box)) and np.all(np.isfinite(size))
    return Prediction(category=msg.category, box_uv=(float(msg.box_u), float(msg.box_v)),
                      object_pose=obj, waypoints=wps,
                      box_xyxy=tuple(float(v) for v in box) if np.any(box != 0) else None,
                      size=size if np.any(size != 0) else None, found=bool(msg.object_found),
                      waypoint_dt=float(msg.waypoint_dt),
                      token_ids=list(msg.token_ids), timings_ms={"inference": float(msg.inference_ms)},
                      valid=bool(finite))


# ---------------------------------------------------------------- trajectories
def joint_trajectory_msg(joint_names, positions: np.ndarray, times: np.ndarray, stamp=None, velocities=None):
    """trajectory_msgs/JointTrajectory, one point per row, time_from_start = times.
    ``stamp`` None/zero means "start now" for joint_trajectory_controller; ``velocities``
    (optional, one row per point) make the controller's interpolation continuous in velocity."""
    # ROS messages: on use, so the image and stamp helpers work without the generated ones (pip install .)
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    msg = JointTrajectory()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.joint_names = list(joint_names)
    vel = [None] * len(times) if velocities is None else np.asarray(velocities, dtype=float)
    for q, t, v in zip(np.asarray(positions, dtype=float), np.asarray(times, dtype=float), vel):
        pt = JointTrajectoryPoint(positions=[float(x) for x in np.atleast_1d(q)], time_from_start=sec_to_duration(float(t)))
        if v is not None:
            pt.velocities = [float(x) for x in np.atleast_1d(v)]
        msg.points.append(pt)
    return msg


# ---------------------------------------------------------------- joint states
def joint_vector(msg, wanted, field: str = "position") -> np.ndarray | None:
    """The ``wanted`` joints' entries (in that order) of a sensor_msgs/JointState's ``field``
    (``position`` or ``velocity``), or None if any is missing or not finite."""
    values = getattr(msg, field)
    idx = {n: i for i, n in enumerate(msg.name)}
    if any(n not in idx or idx[n] >= len(values) for n in wanted):
        return None
    q = np.array([values[idx[n]] for n in wanted], dtype=float)
    return q if np.all(np.isfinite(q)) else None


def gripper_opening(msg, finger_joints, open_pos: float, closed_pos: float) -> float | None:
    """A JointState's mean finger joint position mapped to 0 (closed) .. 1 (open); None if absent."""
    q = joint_vector(msg, finger_joints) if finger_joints else None
    if q is None or open_pos == closed_pos:
        return None
    return float(np.clip((np.mean(q) - closed_pos) / (open_pos - closed_pos), 0.0, 1.0))
