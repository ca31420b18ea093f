"""The policy server on loopback (127.0.0.1, free ports): a model served by ``PolicyServer`` and
asked through ``RemotePolicy`` answers exactly what it answers in-process; a server that goes
down and comes back, or that does not answer in time, costs those calls their prediction and
nothing else (no stale answer, the client reconnects by itself); a model that reads the robot
state gets it; and policy_node with ``policy_server`` publishes nothing for such frames and
keeps running. One test starts the real ``posevla serve`` command."""
from __future__ import annotations

import dataclasses
import re
import socket
import subprocess
import sys
import threading
from test.helpers.models import random_frame
from test.helpers.waiting import poll

import numpy as np
import pytest
import torch

from posevla_core.poses import Pose, Prediction, Waypoint
from posevla_core.serving.client import RemotePolicy
from posevla_core.serving.protocol import PolicyServerError, RemoteModelError, packb, parse_address, unpackb
from posevla_core.serving.server import PolicyServer

INSTR = "pick up the red cube"


def same_prediction(a: Prediction, b: Prediction) -> None:
    """Field by field, bit for bit (NaN equals NaN), types included; ``timings_ms`` aside (clocks)."""
    assert type(a) is type(b)
    for f in dataclasses.fields(a):
        if f.name != "timings_ms":
            _same(getattr(a, f.name), getattr(b, f.name), f.name)


def _same(x, y, where: str) -> None:
    assert type(x) is type(y), (where, type(x), type(y))
    if isinstance(x, np.ndarray):
        assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True), where
    elif dataclasses.is_dataclass(x):
        for f in dataclasses.fields(x):
            _same(getattr(x, f.name), getattr(y, f.name), f"{where}.{f.name}")
    elif isinstance(x, (list, tuple)):
        assert len(x) == len(y), where
        for i, (u, v) in enumerate(zip(x, y)):
            _same(u, v, f"{where}[{i}]")
    elif isinstance(x, float):
        assert x == y or (np.isnan(x) and np.isnan(y)), where
    else:
        assert x == y, where


class Gate:
    """A served model that waits at a gate before it predicts: a server slower than any timeout
    until the test opens the gate (``calls`` counts the predictions it was asked for)."""

    def __init__(self, model) -> None:
        self.model, self.open, self.calls = model, threading.Event(), 0
        self.architecture, self.max_cameras = model.architecture, model.max_cameras

    def predict(self, *a, **kw):
        self.calls += 1
        assert self.open.wait(120), "the test never opened the gate"
        return self.model.predict(*a, **kw)


@pytest.fixture
def served(tiny_model):
    with PolicyServer(tiny_model, "127.0.0.1", 0).start() as server:
        yield server


def test_codec_round_trip_keeps_types_and_refuses_objects():
    msg = {"a": np.arange(6, dtype=">i2").reshape(2, 3), "s": np.float32(0.1), "t": (1, 2.5, "x"), "n": None,
           "p": Prediction("cube", (0.25, float("nan")), Pose([0.1, 0.2, 0.3], [0, 0, 0.3826834, 0.9238795]),
                           [Waypoint(Pose([0.0, 0.0, 0.5], [0, 0, 0, 1]), np.float64(1.0))], size=np.ones(3))}
    back = unpackb(packb(msg))
    assert back["a"].dtype == np.dtype(">i2") and np.array_equal(back["a"], msg["a"]) and back["a"].flags.writeable
    assert type(back["s"]) is np.float32 and back["s"] == msg["s"]
    assert back["t"] == (1, 2.5, "x") and back["n"] is None
    same_prediction(msg["p"], back["p"])
    with pytest.raises(TypeError):
        packb({"x": np.array([object()])})
    with pytest.raises(TypeError):
        packb({"x": {1, 2}})


def test_addresses():
    assert parse_address("gpu-host:8765") == "ws://gpu-host:8765"
    assert parse_address("10.0.0.5") == "ws://10.0.0.5:8765"
    assert parse_address("[::1]:9000") == "ws://[::1]:9000"
    for bad in ("", "host:", "host:99999", "::1:80"):
        with pytest.raises(ValueError):
            parse_address(bad)


def test_serve_threads_argument(capsys):
    """`posevla serve --threads`: 0 (half the CPUs) by default; a negative count is one argparse line."""
    import argparse

    from posevla_core.serving.server import add_arguments

    ap = add_arguments(argparse.ArgumentParser(prog="posevla serve"))
    assert ap.parse_args(["--checkpoint", "c"]).threads == 0
    assert ap.parse_args(["--checkpoint", "c", "--threads", "3"]).threads == 3
    with pytest.raises(SystemExit):
        ap.parse_args(["--checkpoint", "c", "--threads", "-1"])
    assert "--threads: must be >= 0" in capsys.readouterr().err


def test_remote_predictions_equal_local(tiny_model, served):
    with RemotePolicy(served.address, timeout_s=60) as remote:
        meta = remote.connect()
        assert meta["architecture"] == "small" and meta["head"] == "tokens" and not remote.needs_state
        assert remote.max_cameras == tiny_model.max_cameras
        for seed, (h, w) in enumerate([(48, 64), (48, 64), (60, 80)]):
            rgb, depth, K = random_frame(seed, h, w)
            for d in (depth, None):
                local = tiny_model.predict(rgb, d, K, INSTR)
                got = remote.predict(rgb, d, K, INSTR)
                assert got.found and len(got.waypoints) > 0
                assert got.token_ids == local.token_ids
                same_prediction(local, got)
        # keyword arguments of predict travel too; ones that cannot (a torch.Generator) are refused
        same_prediction(tiny_model.predict(rgb, depth, K, INSTR, constrained=False),
                        remote.predict(rgb, depth, K, INSTR, constrained=False))
        with pytest.raises(TypeError):
            remote.predict(rgb, depth, K, INSTR, generator=torch.Generator())
        assert remote.connects == 1


def test_server_restart_mid_run(tiny_model):
    rgb, depth, K = random_frame(3)
    want = tiny_model.predict(rgb, depth, K, INSTR)
    server = PolicyServer(tiny_model, "127.0.0.1", 0).start()
    port = server.port
    remote = RemotePolicy(f"127.0.0.1:{port}", timeout_s=60)
    try:
        same_prediction(want, remote.predict(rgb, depth, K, INSTR))
        server.close()                                    # down: every call fails, none hangs
        for _ in range(2):
            with pytest.raises(PolicyServerError, match="unreachable|connection lost"):
                remote.predict(rgb, depth, K, INSTR)
        server = PolicyServer(tiny_model, "127.0.0.1", port).start()    # back, same port
        same_prediction(want, remote.predict(rgb, depth, K, INSTR))   # the same client object
        assert remote.connects == 2
        # a restart between two calls on a kept connection is invisible: one fresh connection, no error
        server.close()
        server = PolicyServer(tiny_model, "127.0.0.1", port).start()
        same_prediction(want, remote.predict(rgb, depth, K, INSTR))
        assert remote.connects == 3
    finally:
        remote.close()
        server.close()


def test_timeout_gives_no_prediction_and_no_stale_one(tiny_model):
    """A call the server does not answer in time raises; once the server answers again, the next
    call gets ITS frame's prediction, never the late answer to the one that timed out."""
    a, b = random_frame(10), random_frame(11)
    want_a, want_b = tiny_model.predict(*a, INSTR), tiny_model.predict(*b, "pick up the blue cube")
    assert want_a.token_ids != want_b.token_ids        # so that a stale answer would show
    gate = Gate(tiny_model)
    with PolicyServer(gate, "127.0.0.1", 0).start() as server, RemotePolicy(server.address, 0.3) as remote:
        remote.connect(timeout_s=60)
        with pytest.raises(PolicyServerError, match="no answer within 0.3 s"):
            remote.predict(*a, INSTR)                  # the server holds it at the gate
        assert gate.calls == 1
        gate.open.set()                                # now it answers (a, to a closed connection)
        remote.timeout_s = 60.0
        same_prediction(want_b, remote.predict(*b, "pick up the blue cube"))
        same_prediction(want_a, remote.predict(*a, INSTR))
        assert remote.connects == 2


def test_model_errors_come_back_and_the_connection_stays(tiny_model, served):
    rgb, depth, K = random_frame(0)
    with RemotePolicy(served.address, 60) as remote:
        with pytest.raises(RemoteModelError, match="policy server"):
            remote.predict(rgb, depth[:10], K, INSTR)       # depth not aligned to the image
        same_prediction(tiny_model.predict(rgb, depth, K, INSTR), remote.predict(rgb, depth, K, INSTR))
        assert remote.connects == 1


def test_a_model_that_reads_the_robot_state_gets_it():
    from posevla_core.policies.flow.codec import robot_state
    from posevla_core.policies.flow.modeling import FlowPolicy
    from posevla_core.policies.small.configuration import PoseVLAConfig
    from posevla_core.policies.small.modeling import PoseVLA

    torch.manual_seed(0)
    flow = FlowPolicy.attach(PoseVLA(PoseVLAConfig.tiny()), {"horizon": 4, "width": 32, "heads": 2}).eval()
    torch.nn.init.normal_(flow.expert.action_out.weight, std=0.5)     # so that the state moves the chunk
    assert flow.needs_state
    T_cam = np.array([[1.0, 0, 0, 0.3], [0, -1, 0, 0], [0, 0, -1, 0.8], [0, 0, 0, 1]])
    T_ee = np.eye(4)
    T_ee[:3, 3] = [0.3, 0.05, 0.2]
    opened, closed = robot_state(T_ee, 1.0, T_cam), robot_state(T_ee, 0.0, T_cam)
    rgb, depth, K = random_frame(4)
    with PolicyServer(flow, "127.0.0.1", 0).start() as server, RemotePolicy(server.address, 60) as remote:
        remote.connect()
        assert remote.needs_state and remote.head == "flow"
        with pytest.raises(RemoteModelError, match="robot state"):
            remote.predict(rgb, depth, K, INSTR)
        got = {}
        for name, st in (("open", opened), ("closed", closed)):
            # in-process server: the same global torch generator draws the flow's noise for both
            torch.manual_seed(7)
            local = flow.predict(rgb, depth, K, INSTR, state=st)
            torch.manual_seed(7)
            got[name] = remote.predict(rgb, depth, K, INSTR, state=st)
            same_prediction(local, got[name])
        assert got["open"].found and len(got["open"].waypoints) == 4
        moved = [np.abs(p.pose.position - q.pose.position).max() for p, q in
                 zip(got["open"].waypoints, got["closed"].waypoints)]
        assert max(moved) > 1e-4            # the state reached the model


def test_posevla_serve_command(tmp_path, tiny_model):
    """`posevla serve` (its own process) answers as the checkpoint does when loaded here."""
    from posevla_core.policies.factory import load_policy

    ckpt = tmp_path / "ckpt"
    tiny_model.save_pretrained(ckpt)
    local = load_policy(ckpt, device="cpu")
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "posevla_ros.cli", "serve", "--checkpoint", str(ckpt),
                                 "--host", "127.0.0.1", "--port", "0", "--device", "cpu"],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        serving = re.compile(r"on ws://127\.0\.0\.1:(\d+)")                # the line it prints when serving
        poll(lambda: proc.poll() is not None or serving.search(log.read_text()), 120, 0.2)
        m = serving.search(log.read_text())
        assert m, log.read_text()
        port = int(m.group(1))
        with RemotePolicy(f"127.0.0.1:{port}", 60) as remote:
            assert remote.connect()["checkpoint"] == "ckpt"
            for seed in (0, 1):
                rgb, depth, K = random_frame(seed)
                same_prediction(local.predict(rgb, depth, K, INSTR), remote.predict(rgb, depth, K, INSTR))
    finally:
        proc.terminate()
        proc.wait(30)


# ------------------------------------------------------------------ through policy_node (real DDS)
def test_policy_node_with_a_server_that_stalls(ros_context, tiny_model, spin_until):
    """A frame the server does not answer within policy_server_timeout_s: no PosePrediction, a
    'policy_server' log line, the node keeps running; the next frame reconnects and publishes."""
    from test.helpers.policy_node import DEPTH, Harness, color_msg

    from posevla_ros.ros_io import conversions as conv

    gate = Gate(tiny_model)
    with PolicyServer(gate, "127.0.0.1", 0).start() as server:
        h = Harness(ros_context, None, policy_server=server.address, policy_server_timeout_s=3.0)
        try:
            assert h.connected(spin_until) and h.instruct(spin_until)
            stamp = h.send(color_msg("rgb8"), conv.depth_to_image(DEPTH))
            assert h.settle(spin_until, stamp) and h.preds == []
            assert h.policy.outcomes() == {"policy_server": 1}
            assert h.policy._log.counts.get("policy_server", 0) >= 1
            gate.open.set()
            stamp = h.send(color_msg("rgb8"), conv.depth_to_image(DEPTH))
            assert spin_until(h.ex, lambda: h.preds, 120) and h.settle(spin_until, stamp)
            assert len(h.preds) == 1 and h.policy.outcomes()["published"] == 1
            assert (h.preds[0].header.stamp.sec, h.preds[0].header.stamp.nanosec) == (stamp.sec, stamp.nanosec)
            assert h.policy.core.model.connects == 2
        finally:
            h.close()


def test_policy_node_sets_up_for_the_served_model(ros_context, spin_until):
    """The handshake tells the node what the served model needs: a server whose model reads the
    robot state makes the node read /joint_states (no joint state yet: no prediction); a server
    that is not there at start is one clear error."""
    from test.helpers.policy_node import DEPTH, Harness, color_msg

    from rclpy.parameter import Parameter

    from posevla_core.policies.flow.modeling import FlowPolicy
    from posevla_core.policies.small.configuration import PoseVLAConfig
    from posevla_core.policies.small.modeling import PoseVLA
    from posevla_ros.nodes.policy_node import PolicyNode
    from posevla_ros.ros_io import conversions as conv

    torch.manual_seed(0)
    flow = FlowPolicy.attach(PoseVLA(PoseVLAConfig.tiny()), {"horizon": 4, "width": 32, "heads": 2}).eval()
    with PolicyServer(flow, "127.0.0.1", 0).start() as server:
        h = Harness(ros_context, None, policy_server=server.address, camera_pose_topic="/sim/camera_pose",
                    use_tf=False)
        try:
            assert h.policy.core.needs_state and h.policy.robot is not None
            assert h.connected(spin_until) and h.instruct(spin_until)
            stamp = h.send(color_msg("rgb8"), conv.depth_to_image(DEPTH))
            assert h.settle(spin_until, stamp) and h.preds == []
            assert h.policy.outcomes() == {"no_state": 1}
        finally:
            h.close()
    with socket.socket() as s:                      # bound, not listening: connections are refused
        s.bind(("127.0.0.1", 0))
        with pytest.raises(ValueError, match="policy_server: .*unreachable"):
            PolicyNode(context=ros_context, parameter_overrides=[
                Parameter("policy_server", value=f"127.0.0.1:{s.getsockname()[1]}"),
                Parameter("policy_server_wait_s", value=0.0)])
