"""posevla_ros.ros_io.conversions (images, CameraInfo, stamps), StampSync, markers, params, LatestWorker."""
import threading

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image

from posevla_core.paths import resolve_checkpoint
from posevla_ros import params
from posevla_ros.logic.workers import LatestWorker
from posevla_ros.ros_io import conversions as conv
from posevla_ros.ros_io.timesync import StampSync

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8)


def _image(arr: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False) -> Image:
    arr = np.ascontiguousarray(arr)
    if bigendian:
        arr = arr.astype(arr.dtype.newbyteorder(">"))
    row = arr.reshape(arr.shape[0], -1).view(np.uint8)
    step = row.shape[1] + pad
    buf = np.zeros((arr.shape[0], step), np.uint8)
    buf[:, :row.shape[1]] = row
    buf[:, row.shape[1]:] = 0xAB  # garbage in the padding
    return Image(height=arr.shape[0], width=arr.shape[1], encoding=encoding, step=step,
                 is_bigendian=int(bigendian), data=buf.tobytes())


@pytest.mark.parametrize("encoding,arr,pad", [
    ("rgb8", RGB, 0), ("bgr8", RGB[..., ::-1], 7), ("rgba8", np.dstack([RGB, np.full(RGB.shape[:2], 9, np.uint8)]), 4),
    ("bgra8", np.dstack([RGB[..., ::-1], np.zeros(RGB.shape[:2], np.uint8)]), 0)])
def test_color(encoding, arr, pad):
    out = conv.image_to_rgb(_image(arr, encoding, pad))
    assert out.dtype == np.uint8 and out.shape == RGB.shape
    assert np.array_equal(out, RGB)


def test_mono8():
    gray = RGB[..., 0]
    out = conv.image_to_rgb(_image(gray, "mono8", pad=3))
    assert out.shape == RGB.shape and all(np.array_equal(out[..., c], gray) for c in range(3))


@pytest.mark.parametrize("bigendian", [False, True])
@pytest.mark.parametrize("pad", [0, 6])
def test_depth_16uc1(bigendian, pad):
    mm = np.array([[0, 1000, 65535], [250, 1, 2000]], np.uint16)
    out = conv.image_to_depth(_image(mm, "16UC1", pad, bigendian))
    assert out.dtype == np.float32
    expect = np.where(mm == 0, np.nan, mm / 1000.0)
    assert np.allclose(out, expect, equal_nan=True, atol=1e-6)


@pytest.mark.parametrize("bigendian", [False, True])
def test_depth_32fc1(bigendian):
    m = np.array([[0.0, 1.25, np.nan], [0.5, np.inf, 3.0]], np.float32)
    out = conv.image_to_depth(_image(m, "32FC1", pad=8, bigendian=bigendian))
    assert np.isnan(out[0, 0]) and np.isnan(out[0, 2]) and np.isnan(out[1, 1])
    assert np.allclose(out[[0, 1, 1], [1, 0, 2]], [1.25, 0.5, 3.0])


def test_round_trip_builders():
    assert np.array_equal(conv.image_to_rgb(conv.rgb_to_image(RGB, encoding="bgr8")), RGB)
    d = np.array([[0.5, np.nan], [1.234, 2.0]], np.float32)
    assert np.allclose(conv.image_to_depth(conv.depth_to_image(d)), d, equal_nan=True)
    assert np.allclose(conv.image_to_depth(conv.depth_to_image(d, encoding="16UC1")), d, equal_nan=True, atol=1e-3)


@pytest.mark.parametrize("mutate,match", [
    (lambda m: setattr(m, "encoding", "yuv422"), "unsupported"),
    (lambda m: setattr(m, "step", 2), None),
    (lambda m: setattr(m, "data", m.data[:-5]), None),
    (lambda m: setattr(m, "height", 0), "empty")])
def test_bad_images_raise(mutate, match):
    m = _image(RGB, "rgb8")
    mutate(m)
    with pytest.raises(ValueError, match=match):
        conv.image_to_rgb(m)


def test_camera_info():
    K = np.array([[500.0, 0, 320], [0, 510.0, 240], [0, 0, 1]])
    info = conv.K_to_camera_info(K, 640, 480)
    assert np.allclose(conv.camera_info_to_K(info, 640, 480), K)
    with pytest.raises(ValueError, match="640x480 but the image is 320x240"):
        conv.camera_info_to_K(info, 320, 240)
    with pytest.raises(ValueError, match="invalid"):
        conv.camera_info_to_K(CameraInfo())  # all-zero K from a driver that never filled it


def test_stamps():
    s = conv.sec_to_stamp(12.25)
    assert (s.sec, s.nanosec) == (12, 250_000_000)
    assert conv.stamp_to_sec(s) == 12.25


def _stamped(t):
    m = Image()
    m.header.stamp = conv.sec_to_stamp(t)
    return m


def test_stamp_sync_pairs_within_slop():
    out = []
    sync = StampSync(3, 0.02, lambda *m: out.append([conv.stamp_to_sec(x.header.stamp) for x in m]))
    sync.add(0, _stamped(1.00))
    sync.add(1, _stamped(1.01))
    assert out == []
    sync.add(2, _stamped(1.50))  # too far from the others
    assert out == []
    sync.add(0, _stamped(1.51))
    sync.add(1, _stamped(1.505))
    assert out == []             # not final: a CameraInfo stamped 1.51 may still come
    sync.add(1, _stamped(1.52))
    assert out == []             # nor final: a depth image stamped 1.51 may still come
    sync.add(2, _stamped(1.53))  # every stream is now past 1.51: no tighter set can come
    assert out == [[1.51, 1.505, 1.50]]
    sync.add(2, _stamped(1.51))  # the emitted set was consumed: no duplicate
    assert len(out) == 1
    assert sync.received == [2, 3, 3] and sync.emitted == 1


def test_stamp_sync_equal_stamps_emit_at_once_and_never_pair_a_burst_with_later_depth():
    """A burst: color + CameraInfo arrive without depth; the good frame's depth
    then arrives before its color image (the color stream is still behind). The depth must
    wait for its own color image, not pair with a burst image a few ms older."""
    out = []
    sync = StampSync(3, 0.05, lambda *m: out.append([conv.stamp_to_sec(x.header.stamp) for x in m]))
    for i in range(1000):
        t = 10.0 + 0.003 * i
        sync.add(0, _stamped(t))
        sync.add(1, _stamped(t))
    assert out == []
    good = 10.0 + 0.003 * 1000
    sync.add(2, _stamped(good))       # depth first; burst color 3 ms older is within the slop
    sync.add(1, _stamped(good))
    assert out == []
    sync.add(0, _stamped(good))       # its color image: the whole set has one stamp
    assert out == [pytest.approx([good] * 3)]
    for k in range(1, 4):             # a steady stream of equal-stamped frames: one set each
        for i in (0, 1, 2):
            sync.add(i, _stamped(good + k / 30))
        assert len(out) == 1 + k and out[-1] == pytest.approx([good + k / 30] * 3)


def test_markers():
    from std_msgs.msg import Header
    from visualization_msgs.msg import Marker

    from posevla_core.poses import Pose, Prediction, Waypoint
    from posevla_ros.ros_io.markers import prediction_markers

    pred = Prediction("cube", (0.5, 0.5), Pose([0, 0, 0.8], [0, 0, 0, 1]),
                      [Waypoint(Pose([0, 0, 0.5 + 0.1 * i], [0, 0, 0, 1]), g) for i, g in enumerate([1.0, 0.0])],
                      waypoint_dt=0.5)
    msg = conv.prediction_to_msg(pred, Header(frame_id="cam"), "pick", 1.0)
    arr = prediction_markers(msg)
    assert arr.markers[0].action == Marker.DELETEALL
    by_ns = {m.ns: m for m in arr.markers[1:]}
    assert len(by_ns["posevla/path"].points) == 2 and all(m.header.frame_id == "cam" for m in arr.markers)
    assert [(c.r, c.g) for c in by_ns["posevla/gripper"].colors] == [(0.0, 1.0), (1.0, 0.0)]
    assert by_ns["posevla/label"].text == "cube"
    assert by_ns["posevla/object"].pose.position.z == pytest.approx(0.8)  # label offset not shared


def test_markers_oriented_box_and_absent_object():
    """A known size: the object marker is the oriented 3D box (object pose, scale = size).
    <no_object>: no path, no gripper, no object, just a "no <category> in view" text."""
    from std_msgs.msg import Header
    from visualization_msgs.msg import Marker

    from posevla_core.poses import Pose, Prediction, Waypoint
    from posevla_ros.ros_io.markers import prediction_markers

    q = [0.0, 0.0, 0.38268343, 0.92387953]     # 45 deg about the optical z axis
    pred = Prediction("mug", (0.5, 0.5), Pose([0.1, 0.0, 0.8], q),
                      [Waypoint(Pose([0, 0, 0.6], [0, 0, 0, 1]), 1.0)], waypoint_dt=0.5,
                      box_xyxy=(0.4, 0.4, 0.6, 0.6), size=[0.08, 0.06, 0.1])
    arr = prediction_markers(conv.prediction_to_msg(pred, Header(frame_id="cam"), "pick the mug", 1.0))
    by_ns = {m.ns: m for m in arr.markers[1:]}
    box = by_ns["posevla/object"]
    assert box.type == Marker.CUBE and box.header.frame_id == "cam"
    assert (box.scale.x, box.scale.y, box.scale.z) == pytest.approx((0.08, 0.06, 0.1))
    assert [box.pose.orientation.z, box.pose.orientation.w] == pytest.approx(q[2:])
    assert [box.pose.position.x, box.pose.position.z] == pytest.approx([0.1, 0.8])
    label = by_ns["posevla/label"]
    assert label.text == "mug" and label.pose.position.y < -0.5 * np.linalg.norm([0.08, 0.06, 0.1])

    absent = Prediction.absent("yellow cylinder")
    absent.waypoints = pred.waypoints          # whatever the model decoded: never shown
    arr = prediction_markers(conv.prediction_to_msg(absent, Header(frame_id="cam"), "pick", 1.0))
    assert arr.markers[0].action == Marker.DELETEALL and len(arr.markers) == 2
    note = arr.markers[1]
    assert note.type == Marker.TEXT_VIEW_FACING and note.text == "no yellow cylinder in view"
    assert note.header.frame_id == "cam" and note.pose.position.z > 0


def test_params_coerce_and_files(tmp_path):
    assert params.coerce([0, 1, 2], [0.0]) == [0.0, 1.0, 2.0] and params.coerce("0.5", 1.0) == 0.5
    assert params.coerce("true", False) is True
    with pytest.raises(ValueError):
        params.coerce("maybe", False)
    f = tmp_path / "p.yaml"
    f.write_text("/**:\n  ros__parameters:\n    use_sim_time: true\n"
                 "executor_node:\n  ros__parameters:\n    workspace: {min: [0, 0, 0]}\n")
    assert params.load_params_file(f, "executor_node") == {"use_sim_time": True, "workspace.min": [0, 0, 0]}
    assert params.typed_overrides(params.EXECUTOR_PARAMS, {"workspace.min": [0, 0, 0], "bogus": 1}) == \
        {"workspace.min": [0.0, 0.0, 0.0]}
    with pytest.raises(KeyError):
        params.typed_overrides(params.EXECUTOR_PARAMS, {"bogus": 1}, strict=True)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_checkpoint(str(tmp_path / "nope"))


def test_latest_worker_newest_wins():
    gate, started, seen = threading.Event(), threading.Event(), []

    def fn(x):
        started.set()
        gate.wait(10)
        seen.append(x)

    w = LatestWorker(fn)
    w.submit(0)
    assert started.wait(10)  # 0 is being processed
    for i in range(1, 6):
        w.submit(i)
    gate.set()
    assert w.wait_idle(10)
    assert seen == [0, 5] and w.dropped == 4
    w.submit("boom")
    w.stop()


def test_latest_worker_survives_errors():
    errors = []
    w = LatestWorker(lambda x: 1 / x, on_error=lambda e, tb: errors.append(type(e)))
    w.submit(0)
    assert w.wait_idle(10)
    w.submit(1)
    assert w.wait_idle(10) and errors == [ZeroDivisionError] and w.processed == 2
    w.stop()


def test_seconds_to_stamp_and_duration_carry_into_the_second():
    from posevla_ros.ros_io.conversions import duration_to_sec, sec_to_duration, sec_to_stamp, stamp_to_sec

    st = sec_to_stamp(1.9999999999)
    assert (st.sec, st.nanosec) == (2, 0)
    d = sec_to_duration(0.25)
    assert (d.sec, d.nanosec) == (0, 250_000_000) and duration_to_sec(d) == 0.25
    assert abs(stamp_to_sec(sec_to_stamp(12.345678901)) - 12.345678901) < 1e-9


def test_prediction_message_round_trip_keeps_waypoints():
    from std_msgs.msg import Header

    from posevla_core.poses import Pose, Prediction, Waypoint

    pred = Prediction("cube", (0.25, 0.75), Pose([0.1, 0, 0.8], [0, 0, 0, 1]),
                      [Waypoint(Pose([0, 0.1 * i, 0.5], [0, 0, 0, 1]), g) for i, g in enumerate([1.0, 0.0])],
                      waypoint_dt=0.5)
    back = conv.msg_to_prediction(conv.prediction_to_msg(pred, Header(frame_id="cam"), "pick", 1.0))
    assert back.valid and back.category == "cube" and [w.gripper for w in back.waypoints] == [1.0, 0.0]
    np.testing.assert_allclose(back.waypoints[1].pose.position, [0, 0.1, 0.5])
    np.testing.assert_allclose(back.object_pose.position, [0.1, 0, 0.8])
    markers = prediction_markers_lifetime(pred)
    assert (markers.sec, markers.nanosec) == (1, 500_000_000)


def prediction_markers_lifetime(pred):
    from std_msgs.msg import Header

    from posevla_ros.ros_io.markers import prediction_markers

    arr = prediction_markers(conv.prediction_to_msg(pred, Header(frame_id="cam"), "pick", 1.0), lifetime_s=1.5)
    return arr.markers[1].lifetime
