"""policy_node over real DDS with a tiny random PoseVLA: every supported encoding gives
exactly one PosePrediction carrying the image's frame_id and stamp; bad, stale and
malformed input and a crashing model give none and leave the node answering good input."""
import os
import threading
import time
from test.helpers.policy_node import DEPTH, FRAME, H, Harness, K, RGB, W, color_msg
from test.helpers.waiting import poll

import numpy as np
import pytest
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String
from std_srvs.srv import Trigger

from posevla_ros.launching.runner import spin_nodes
from posevla_ros.logic.inference import FrameError, PolicyCore, RawFrame
from posevla_ros.msg import PosePrediction
from posevla_ros.nodes.policy_node import PolicyNode
from posevla_ros.ros_io import conversions as conv
from posevla_ros.ros_io.topics import INSTRUCTION_QOS, TOPIC_INSTRUCTION


@pytest.fixture
def harness(ros_context, tiny_model, spin_until):
    h = Harness(ros_context, tiny_model)
    assert h.connected(spin_until) and h.instruct(spin_until)
    yield h
    h.close()


@pytest.mark.parametrize("color", ["rgb8", "bgr8_padded", "mono8"])
@pytest.mark.parametrize("depth_enc", ["16UC1", "32FC1"])
def test_one_prediction_per_frame(harness, spin_until, color, depth_enc):
    stamp = harness.send(color_msg(color), conv.depth_to_image(DEPTH, encoding=depth_enc))
    assert spin_until(harness.ex, lambda: harness.preds, 120), "no prediction"
    assert harness.settle(spin_until, stamp)
    assert len(harness.preds) == 1
    p = harness.preds[0]
    assert p.header.frame_id == FRAME
    assert (p.header.stamp.sec, p.header.stamp.nanosec) == (stamp.sec, stamp.nanosec)
    assert p.instruction == "pick up the red cube" and len(p.waypoints) > 0 and p.inference_ms > 0
    assert spin_until(harness.ex, lambda: harness.markers, 30)
    assert harness.markers[-1].markers[1].header.frame_id == FRAME


def test_pause_resume(harness, spin_until):
    cli_pause = harness.io.create_client(Trigger, "/posevla/pause")
    cli_resume = harness.io.create_client(Trigger, "/posevla/resume_policy")
    for cli in (cli_pause, cli_resume):
        assert spin_until(harness.ex, cli.service_is_ready, 30)
    fut = cli_pause.call_async(Trigger.Request())
    assert spin_until(harness.ex, fut.done, 30) and fut.result().success
    stamp = harness.send(color_msg("rgb8"), conv.depth_to_image(DEPTH))
    assert harness.settle(spin_until, stamp) and harness.preds == []
    assert harness.policy.outcomes().get("paused") == 1
    fut = cli_resume.call_async(Trigger.Request())
    assert spin_until(harness.ex, fut.done, 30) and fut.result().success
    harness.send(color_msg("rgb8"), conv.depth_to_image(DEPTH))
    assert spin_until(harness.ex, lambda: harness.preds, 120)


def test_stale_and_no_instruction(ros_context, tiny_model, spin_until):
    h = Harness(ros_context, tiny_model, max_image_age_s=0.5)
    try:
        assert h.connected(spin_until)
        stamp = h.send(color_msg("rgb8"), conv.depth_to_image(DEPTH))  # no instruction yet
        assert h.settle(spin_until, stamp) and h.preds == []
        assert h.policy._log.counts.get("no_instruction", 0) >= 1
        assert h.instruct(spin_until)
        old = h.io.get_clock().now().nanoseconds * 1e-9 - 10.0
        stamp = h.send(color_msg("rgb8"), conv.depth_to_image(DEPTH), stamp=conv.sec_to_stamp(old))
        assert h.settle(spin_until, stamp) and h.preds == []
        assert h.policy._log.counts.get("stale", 0) >= 1
    finally:
        h.close()


def _malformed_frames():
    good_d = conv.depth_to_image(DEPTH)
    info = conv.K_to_camera_info(K, W, H)
    out = []

    def rgb(**kw):
        m = conv.rgb_to_image(RGB)
        for k, v in kw.items():
            setattr(m, k, v)
        return m

    def dep(**kw):
        m = conv.depth_to_image(DEPTH)
        for k, v in kw.items():
            setattr(m, k, v)
        return m

    bad_info = conv.K_to_camera_info(K, W, H)
    bad_info.k = [float("nan")] * 9
    small_info = conv.K_to_camera_info(K, W // 2, H // 2)
    kinds = [
        lambda i: (rgb(encoding=["yuv422", "16UC1", "", "jpeg"][i % 4]), good_d, info),
        lambda i: (rgb(step=i % (3 * W)), good_d, info),
        lambda i: (rgb(data=bytes(i % 50)), good_d, info),
        lambda i: (rgb(height=0, width=0, data=b""), good_d, info),
        lambda i: (rgb(height=100000, width=100000), good_d, info),
        lambda i: (rgb(), dep(encoding="rgb8"), info),
        lambda i: (rgb(), dep(data=bytes(i % 97)), info),
        lambda i: (rgb(), dep(height=H // 2), info),
        lambda i: (rgb(), None, info),
        lambda i: (rgb(), good_d, bad_info),
        lambda i: (rgb(), good_d, small_info),
        lambda i: (rgb(), good_d, CameraInfo()),
    ]
    for kind in kinds:
        out.append([kind(i) for i in range(1000)])
    return out


def test_core_rejects_1000_malformed_frames_of_every_kind(tiny_model):
    core = PolicyCore(tiny_model, use_depth=True, max_image_age_s=0.0)
    for frames in _malformed_frames():
        for rgb, depth, info in frames:
            with pytest.raises(FrameError):
                core.decode(RawFrame(rgb, info, depth))


def test_node_survives_malformed_flood_and_crashing_model(harness, spin_until):
    """Each step waits until the node has finished with the frame it sent (its own record),
    not for a quiet period: a frame still in flight cannot leak into the next step."""
    for frames in _malformed_frames():
        for rgb, depth, info in frames:
            harness.send(rgb, depth, info)
        spin_until(harness.ex, lambda: False, 0.05)
    assert harness.instruct(spin_until, "   ")  # a blank instruction: no prediction
    # the publishers deliver in order, so once this frame is done every flood frame is too
    stamp = harness.send(color_msg("rgb8"), conv.depth_to_image(DEPTH))
    assert harness.settle(spin_until, stamp), "the node never finished the frame sent after the flood"
    assert harness.preds == []
    assert harness.policy.outcomes().get("no_instruction", 0) >= 1
    assert "published" not in harness.policy.outcomes()
    assert harness.instruct(spin_until)
    stamp = harness.send(color_msg("bgr8_padded"), conv.depth_to_image(DEPTH, encoding="16UC1"))
    assert spin_until(harness.ex, lambda: harness.preds, 120), "node stopped answering good input"
    assert harness.settle(spin_until, stamp) and len(harness.preds) == 1

    class Crashing:
        def predict(self, *a, **k):
            raise RuntimeError("CUDA out of memory (simulated)")

    good_model, harness.policy.core.model = harness.policy.core.model, Crashing()
    stamp = harness.send(color_msg("rgb8"), conv.depth_to_image(DEPTH))
    assert harness.settle(spin_until, stamp) and len(harness.preds) == 1
    assert harness.policy.outcomes().get("model_error") == 1
    assert harness.policy._log.counts.get("model_error", 0) == 1
    harness.policy.core.model = good_model
    harness.send(color_msg("rgb8"), conv.depth_to_image(DEPTH))
    assert spin_until(harness.ex, lambda: len(harness.preds) > 1, 120)


def test_no_object_answer_is_published_without_waypoints_and_logged_once(harness, spin_until):
    """The real tiny model, made to answer <no_object> while still decoding waypoints: every
    frame goes out with object_found false and NO waypoints, and the node says so once."""
    decoded = []

    class NoObject:
        def __init__(self, model):
            self.model = model

        def predict(self, *a, **k):
            pred = self.model.predict(*a, **k)
            decoded.append(len(pred.waypoints))
            pred.found = False
            return pred

    warned, logger = [], harness.policy.get_logger()

    class Recording:
        def warn(self, msg):
            warned.append(msg)
            logger.warn(msg)

        def __getattr__(self, name):
            return getattr(logger, name)

    harness.policy.get_logger = Recording
    harness.policy.core.model = NoObject(harness.policy.core.model)
    for _ in range(2):
        stamp = harness.send(color_msg("rgb8"), conv.depth_to_image(DEPTH))
        assert harness.settle(spin_until, stamp)
    assert spin_until(harness.ex, lambda: len(harness.preds) == 2 and len(harness.markers) == 2, 30)
    assert decoded and min(decoded) > 0          # the model did decode waypoints ...
    for m in harness.preds:                      # ... none of which went out
        assert not m.object_found and list(m.waypoints) == [] and m.instruction == "pick up the red cube"
    asked = harness.preds[-1].category or "instructed object"
    assert [m.text for m in harness.markers[-1].markers[1:]] == [f"no {asked} in view"]
    assert len([w for w in warned if "not in view" in w]) == 1, warned


def test_no_depth_mode(ros_context, tiny_model, spin_until):
    h = Harness(ros_context, tiny_model, use_depth=False)
    try:
        assert spin_until(h.ex, lambda: h.pub_rgb.get_subscription_count() > 0 and
                          h.pub_info.get_subscription_count() > 0, 30) and h.instruct(spin_until)
        h.send(color_msg("rgb8"))
        assert spin_until(h.ex, lambda: h.preds, 120)
    finally:
        h.close()


def test_missing_checkpoint_is_a_clear_error(ros_context, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        PolicyNode(context=ros_context, parameter_overrides=[Parameter("checkpoint", value=str(tmp_path / "x"))])


def test_inference_threads_are_set_before_the_model_loads(ros_context, tmp_path):
    """Half the CPUs by default (at least 1): a worker thread's OpenMP team that fits beside the
    main thread's keeps spin-waiting between kernels; the parameter wins when given."""
    import torch

    from posevla_core.policies.base import set_inference_threads

    default = torch.get_num_threads()
    cpus = len(os.sched_getaffinity(0))
    assert set_inference_threads(0) == torch.get_num_threads() == max(1, min(default, cpus // 2))
    torch.set_num_threads(default)
    with pytest.raises(ValueError, match=">= 0"):
        set_inference_threads(-1)
    assert torch.get_num_threads() == default
    with pytest.raises(FileNotFoundError, match="does not exist"):     # set before the load is tried
        PolicyNode(context=ros_context, parameter_overrides=[Parameter("checkpoint", value=str(tmp_path / "x")),
                                                             Parameter("inference_threads", value=3)])
    assert torch.get_num_threads() == 3


@pytest.mark.slow
def test_policy_node_process(ros_context, tiny_model, tmp_path, node_process, spin_until):
    """`python -m posevla_ros.nodes.policy_node --ros-args -p checkpoint:=...` in its own process."""
    ckpt = tmp_path / "ckpt"
    tiny_model.save_pretrained(str(ckpt))
    proc = node_process("posevla_ros.nodes.policy_node", "-p", f"checkpoint:={ckpt}", "-p", "device:=cpu",
                        "-p", "instruction:=pick up the cube", "-p", "max_image_age_s:=30.0")
    io = Node("policy_proc_io", context=ros_context)
    preds = []
    io.create_subscription(PosePrediction, "/posevla/prediction", preds.append, QoSProfile(depth=10))
    pubs = {t: io.create_publisher(T, n, qos_profile_sensor_data) for t, T, n in [
        ("rgb", Image, "/camera/color/image_raw"), ("d", Image, "/camera/aligned_depth_to_color/image_raw"),
        ("i", CameraInfo, "/camera/color/camera_info")]}
    ex = MultiThreadedExecutor(context=ros_context)
    ex.add_node(io)
    assert spin_until(ex, lambda: all(p.get_subscription_count() for p in pubs.values()) or not proc.alive(), 120), \
        proc.output()
    for _ in range(100):
        if preds or not proc.alive():
            break
        stamp = io.get_clock().now().to_msg()
        msgs = {"rgb": conv.rgb_to_image(RGB), "d": conv.depth_to_image(DEPTH), "i": conv.K_to_camera_info(K, W, H)}
        for k, m in msgs.items():
            m.header.stamp, m.header.frame_id = stamp, FRAME
            pubs[k].publish(m)
        spin_until(ex, lambda: preds, 2.0)
    assert preds, proc.output()
    assert preds[0].header.frame_id == FRAME
    io.destroy_node()


# ------------------------------------------------------------------ burst and Ctrl-C
class Spun:
    """Nodes spun by ``runner.spin_nodes`` (the executor every posevla process uses) on a
    background thread, so the test thread is free to publish and time."""

    def __init__(self, nodes, ctx) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=spin_nodes, args=(nodes, self._stop.is_set, ctx), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def wait_for(pred, timeout: float) -> bool:
    return poll(pred, timeout, 0.005)


def camera_publishers(node):
    return (node.create_publisher(Image, "/camera/color/image_raw", qos_profile_sensor_data),
            node.create_publisher(Image, "/camera/aligned_depth_to_color/image_raw", qos_profile_sensor_data),
            node.create_publisher(CameraInfo, "/camera/color/camera_info", qos_profile_sensor_data))


def stamped(node, *msgs):
    stamp = node.get_clock().now().to_msg()
    for m in msgs:
        m.header.stamp, m.header.frame_id = stamp, FRAME
    return stamp


def burst_color(i: int) -> tuple[Image, CameraInfo]:
    """Color + CameraInfo of a burst without depth; every 10th pair malformed, four ways."""
    rgb, info = conv.rgb_to_image(RGB), conv.K_to_camera_info(K, W, H)
    bad = (i // 10) % 4 if i % 10 == 0 else -1
    if bad == 0:
        rgb.encoding = "yuv422"
    elif bad == 1:
        rgb.data = bytes(i % 50)
    elif bad == 2:
        rgb.height = rgb.width = 0
    elif bad == 3:
        info.k = [float("nan")] * 9
    return rgb, info


def test_answers_a_good_frame_within_2s_after_a_burst_without_depth(ros_context, tiny_model):
    """A burst: ~1000 color images + CameraInfo with no depth (some malformed), then a good
    RGB-D frame from NEW publishers must be answered within 2 s (publish -> prediction
    received), 10 times in a row. The node runs on the production executor with production
    sync settings; only max_image_age_s is raised so that a slow answer is measured rather
    than refused as stale."""
    overrides = dict(rate_hz=0.0, max_image_age_s=30.0, use_depth=True, sync_slop_s=0.05)
    policy = PolicyNode(model=tiny_model, context=ros_context,
                        parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])
    io = Node("burst_io", context=ros_context)
    received, lock = {}, threading.Lock()

    def on_pred(msg):
        with lock:
            received.setdefault((msg.header.stamp.sec, msg.header.stamp.nanosec), time.monotonic())

    io.create_subscription(PosePrediction, "/posevla/prediction", on_pred, QoSProfile(depth=100))
    pub_instr = io.create_publisher(String, TOPIC_INSTRUCTION, INSTRUCTION_QOS)
    burst_pubs = camera_publishers(io)
    spun = Spun([policy, io], ros_context)
    latencies = []
    try:
        assert wait_for(lambda: all(p.get_subscription_count() for p in (*burst_pubs, pub_instr))
                        and io.count_publishers("/posevla/prediction") > 0, 60)
        pub_instr.publish(String(data="pick up the red cube"))
        assert wait_for(lambda: policy.instruction == "pick up the red cube", 30)
        for r in range(10):
            fresh = Node(f"burst_good_{r}", context=ros_context)
            rgb_pub, depth_pub, info_pub = camera_publishers(fresh)
            assert wait_for(lambda: all(p.get_subscription_count() for p in (rgb_pub, depth_pub, info_pub)), 60)
            for i in range(1000):
                rgb, info = burst_color(i)
                stamped(io, rgb, info)
                burst_pubs[2].publish(info)
                burst_pubs[0].publish(rgb)
            rgb, depth, info = conv.rgb_to_image(RGB), conv.depth_to_image(DEPTH), conv.K_to_camera_info(K, W, H)
            stamp = stamped(fresh, rgb, depth, info)
            key = (stamp.sec, stamp.nanosec)
            info_pub.publish(info)
            depth_pub.publish(depth)
            rgb_pub.publish(rgb)
            t0 = time.monotonic()
            answered = wait_for(lambda: key in received, 60)
            fresh.destroy_node()
            assert answered, (f"round {r}: no prediction for the good frame; node outcomes "
                              f"{policy.outcomes()}, sync received {getattr(policy._sync, 'received', '?')}")
            latencies.append(received[key] - t0)
        assert policy.outcomes().get("bad_rgb", 0) + policy.outcomes().get("published", 0) >= 10
        assert max(latencies) < 2.0, f"publish -> prediction after a burst (s): {latencies}"
    finally:
        spun.stop()
        policy.destroy_node()
        io.destroy_node()


@pytest.mark.slow
def test_ctrl_c_while_predicting_exits_cleanly(ros_context, tiny_model, tmp_path, node_process):
    """SIGINT to `python -m posevla_ros.nodes.policy_node` while its worker is predicting:
    exit status 0 and no traceback (the worker used to publish after the context was shut down)."""
    ckpt = tmp_path / "ckpt"
    tiny_model.save_pretrained(str(ckpt))
    proc = node_process("posevla_ros.nodes.policy_node", "-p", f"checkpoint:={ckpt}", "-p", "device:=cpu",
                        "-p", "instruction:=pick up the cube", "-p", "max_image_age_s:=30.0", "-p", "rate_hz:=0.0")
    io = Node("policy_sigint_io", context=ros_context)
    preds = []
    io.create_subscription(PosePrediction, "/posevla/prediction", preds.append, QoSProfile(depth=100))
    pubs = camera_publishers(io)
    spun = Spun([io], ros_context)
    stop = threading.Event()

    def stream():   # frames back to back, so the worker is busy when SIGINT comes
        while not stop.is_set():
            rgb, depth, info = conv.rgb_to_image(RGB), conv.depth_to_image(DEPTH), conv.K_to_camera_info(K, W, H)
            stamped(io, rgb, depth, info)
            pubs[2].publish(info), pubs[1].publish(depth), pubs[0].publish(rgb)
            stop.wait(0.01)

    streamer = threading.Thread(target=stream, daemon=True)
    try:
        assert wait_for(lambda: all(p.get_subscription_count() for p in pubs) or not proc.alive(), 120), proc.output()
        streamer.start()
        assert wait_for(lambda: len(preds) >= 5 or not proc.alive(), 120), proc.output()
        rc = proc.stop(timeout=30)
    finally:
        stop.set()
        streamer.join(5)
        spun.stop()
        io.destroy_node()
    out = proc.log_path.read_text(errors="replace")
    assert rc == 0, out
    assert "Traceback" not in out and "RCLError" not in out and "context is invalid" not in out, out


def test_a_model_that_reads_the_robot_state_gets_it_at_each_image(ros_context, tiny_model, spin_until):
    """A proprioceptive model (``needs_state``: a flow expert with ``state``) gets the robot at
    the image's stamp, from /joint_states (FK of the robot config, pinocchio) and the camera
    pose topic, computed as the recorder computes its observations; with no joint state near
    the image it does not predict (unsure: no motion)."""
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import JointState

    from posevla_core.poses import Pose
    from posevla_core.sim.mujoco.scene import HOME_Q
    from posevla_ros import params as P
    from posevla_ros.logic.planning import load_kinematics

    class Proprio:
        needs_state = True

        def __init__(self, model):
            self.model, self.states = model, []

        def predict(self, *a, state=None, **kw):
            self.states.append(state)
            return self.model.predict(*a, **kw)

    model = Proprio(tiny_model)
    h = Harness(ros_context, model, camera_pose_topic="/sim/camera_pose", use_tf=False,
                robot_description_file="posevla://panda")
    pub_js = h.io.create_publisher(JointState, "/joint_states", QoSProfile(depth=10))
    pub_cam = h.io.create_publisher(PoseStamped, "/sim/camera_pose", QoSProfile(depth=10))
    try:
        assert h.connected(spin_until) and h.instruct(spin_until)
        assert spin_until(h.ex, lambda: pub_js.get_subscription_count() > 0 and pub_cam.get_subscription_count() > 0, 30)
        stamp = h.send(color_msg("rgb8"), conv.depth_to_image(DEPTH))
        assert h.settle(spin_until, stamp) and h.preds == [] and model.states == []
        assert h.policy.outcomes().get("no_state") == 1

        stamp = h.now()
        cam = PoseStamped()
        cam.header.stamp, cam.header.frame_id = stamp, "base_link"
        cam.pose = conv.pose_to_msg(Pose([1.2, 0.0, 0.8], [0.0, 0.0, 0.0, 1.0]))
        js = JointState(name=P.PANDA_ARM_JOINTS + P.PANDA_FINGER_JOINTS, position=list(HOME_Q) + [0.02, 0.02])
        js.header.stamp = stamp
        pub_cam.publish(cam)
        pub_js.publish(js)
        t = conv.stamp_to_sec(stamp)
        assert spin_until(h.ex, lambda: h.policy.robot.joint_state_at(t) is not None
                          and h.policy.robot.camera_pose_at(cam.header)[0] is not None, 30)
        h.send(color_msg("rgb8"), conv.depth_to_image(DEPTH), stamp=stamp)
        assert spin_until(h.ex, lambda: h.preds, 120)
        st = model.states[-1]
        fk = load_kinematics(dict(P.defaults(P.EXECUTOR_PARAMS), **P.robot_executor_params("sim_panda"))).fk
        np.testing.assert_allclose(st["T_base_ee"], fk(HOME_Q), atol=1e-9)
        np.testing.assert_allclose(st["T_base_cam"][:3, 3], [1.2, 0.0, 0.8], atol=1e-9)
        assert st["gripper"] == pytest.approx(0.5)          # fingers at 0.02 of 0.04: half open
        # a joint state with NaN positions: no state, no prediction (unsure: no motion)
        stamp = h.now()
        cam.header.stamp = js.header.stamp = stamp
        js.position = [float("nan")] + list(HOME_Q[1:]) + [0.02, 0.02]
        pub_cam.publish(cam)
        pub_js.publish(js)
        t = conv.stamp_to_sec(stamp)
        assert spin_until(h.ex, lambda: h.policy.robot.joint_state_at(t) is not None, 30)
        h.send(color_msg("rgb8"), conv.depth_to_image(DEPTH), stamp=stamp)
        assert h.settle(spin_until, stamp) and len(h.preds) == 1
        assert h.policy.outcomes().get("no_state") == 2
    finally:
        h.close()


def test_an_object_the_depth_camera_does_not_see_is_refused(ros_context, spin_until):
    """The shipped checkpoint on a sim frame: with clean depth it predicts; with the target's own
    pixels missing from the depth image (what a RealSense gives on a black or shiny object) it
    would answer decimeters off without refusing, so the node publishes nothing for that frame and
    records why (min_object_depth_support)."""
    from posevla_core.paths import default_checkpoint
    from posevla_core.policies.factory import load_policy
    from posevla_core.sim.mujoco.env import SimEnv, body_mask

    with SimEnv(width=224, height=224) as env:
        spec = env.reset(seed=1000, task="pick")
        rgb, depth, Ks = env.render()
        mask = body_mask(env, spec.target)
    assert mask.sum() > 50
    h = Harness(ros_context, load_policy(default_checkpoint(), device="cpu"))
    try:
        assert h.connected(spin_until) and h.instruct(spin_until, spec.instruction)
        info = conv.K_to_camera_info(Ks, 224, 224)
        stamp = h.send(conv.rgb_to_image(rgb), conv.depth_to_image(depth), info)
        assert h.settle(spin_until, stamp), h.policy.outcomes()
        assert spin_until(h.ex, lambda: h.preds, 30), h.policy.outcomes()
        assert len(h.preds) == 1 and h.preds[0].object_found
        holed = np.where(mask, np.nan, depth).astype(np.float32)
        stamp = h.send(conv.rgb_to_image(rgb), conv.depth_to_image(holed), conv.K_to_camera_info(Ks, 224, 224))
        assert h.settle(spin_until, stamp)
        assert len(h.preds) == 1 and h.policy.outcomes().get("no_object_depth") == 1
    finally:
        h.close()
