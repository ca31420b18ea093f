"""rviz2 markers of a PosePrediction: the waypoint path, the gripper state at each
waypoint (green open .. red closed), and the grounded object: its oriented 3D box (a CUBE at
``object_pose`` scaled to ``object_size``; a 5 cm cube where the size is unknown, all zeros)
and its category label. A ``<no_object>`` answer (``object_found`` false) shows only a
"no <category> in view" text in front of the camera: its pose means nothing.
Everything in the prediction's own (camera) frame and stamp."""
from __future__ import annotations

import copy
import math

from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from posevla_ros.ros_io.conversions import sec_to_duration

NS_PATH, NS_GRIPPER, NS_OBJECT, NS_LABEL = "posevla/path", "posevla/gripper", "posevla/object", "posevla/label"
UNKNOWN_SIZE_M = 0.05          # edge of the object cube when the prediction carries no size
ABSENT_TEXT_AT = (0.0, 0.0, 0.5)   # camera optical frame: half a meter straight ahead


def _color(r, g, b, a=1.0):
    return ColorRGBA(r=float(r), g=float(g), b=float(b), a=float(a))


def prediction_markers(pred_msg, lifetime_s: float = 0.0):
    """PosePrediction -> visualization_msgs/MarkerArray (first marker DELETEALL)."""

    header = pred_msg.header
    life = sec_to_duration(lifetime_s)
    out = MarkerArray()
    out.markers.append(Marker(header=header, action=Marker.DELETEALL))
    if not pred_msg.object_found:
        note = Marker(header=header, ns=NS_LABEL, id=0, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD,
                      lifetime=life)
        note.pose.position.x, note.pose.position.y, note.pose.position.z = ABSENT_TEXT_AT
        note.pose.orientation.w = 1.0
        note.scale.z = 0.04
        note.color = _color(1.0, 0.3, 0.3)
        note.text = f"no {pred_msg.category or 'instructed object'} in view"
        out.markers.append(note)
        return out

    pts = [Point(x=w.pose.position.x, y=w.pose.position.y, z=w.pose.position.z) for w in pred_msg.waypoints]
    path = Marker(header=header, ns=NS_PATH, id=0, type=Marker.LINE_STRIP, action=Marker.ADD, lifetime=life)
    path.pose.orientation.w = 1.0
    path.scale.x = 0.005
    path.color = _color(0.1, 0.5, 1.0)
    path.points = pts
    out.markers.append(path)

    grip = Marker(header=header, ns=NS_GRIPPER, id=0, type=Marker.SPHERE_LIST, action=Marker.ADD, lifetime=life)
    grip.pose.orientation.w = 1.0
    grip.scale.x = grip.scale.y = grip.scale.z = 0.02
    grip.points = pts
    grip.colors = [_color(1.0 - g, g, 0.0) for g in (min(1.0, max(0.0, w.gripper)) for w in pred_msg.waypoints)]
    out.markers.append(grip)

    size = pred_msg.object_size
    known = any(v != 0.0 for v in (size.x, size.y, size.z))
    obj = Marker(header=header, ns=NS_OBJECT, id=0, type=Marker.CUBE, action=Marker.ADD, lifetime=life)
    obj.pose = pred_msg.object_pose       # oriented: the box's axes are the object's own
    if known:
        obj.scale.x, obj.scale.y, obj.scale.z = size.x, size.y, size.z
    else:
        obj.scale.x = obj.scale.y = obj.scale.z = UNKNOWN_SIZE_M
    obj.color = _color(1.0, 0.8, 0.0, 0.6)
    out.markers.append(obj)

    label = Marker(header=header, ns=NS_LABEL, id=0, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD,
                   lifetime=life)
    label.pose = copy.deepcopy(pred_msg.object_pose)
    # above the object in the optical frame (y down), clear of its box whatever its orientation
    half = 0.5 * math.sqrt(size.x ** 2 + size.y ** 2 + size.z ** 2) if known else UNKNOWN_SIZE_M / 2
    label.pose.position.y -= half + 0.035
    label.scale.z = 0.04
    label.color = _color(1.0, 1.0, 1.0)
    label.text = pred_msg.category or "?"
    out.markers.append(label)
    return out
