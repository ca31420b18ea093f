"""Burst benchmark (a policy_node that stalled after a burst): how long does a
``python -m posevla_ros.nodes.policy_node`` process take to answer a good RGB-D frame right after
a burst of color images + CameraInfo with no depth?

Each try: publish ``--burst`` color images and CameraInfo (640x480 by default; every 10th
color image malformed) with no depth, as fast as Python publishes them; then, from a NEW
publisher node, publish freshly stamped good RGB-D frames at 10 Hz until a PosePrediction
for one of them arrives. Reported per try: seconds from the first good frame's publish to
the first prediction (time to answer), and from that frame's own publish (latency).
Then a steady 30 Hz stream of good frames for ``--steady-s`` seconds: prediction rate and
image-to-prediction latency. The policy runs a random tiny PoseVLA so inference is cheap.

    python -m benchmarks.bench_burst --tries 10
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _save_model(path: Path, tiny: bool = True) -> None:
    import torch

    from posevla_core.policies.small.configuration import PoseVLAConfig
    from posevla_core.policies.small.modeling import PoseVLA

    torch.manual_seed(0)
    PoseVLA(PoseVLAConfig.tiny() if tiny else PoseVLAConfig()).save_pretrained(str(path))


class Io:
    """Publishers/subscriber in this process, spun on a background thread."""

    def __init__(self, ctx, W: int, H: int) -> None:
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.qos import QoSProfile

        from posevla_ros.msg import PosePrediction

        self.ctx, self.W, self.H = ctx, W, H
        self.node = Node("burst_io", context=ctx)
        self.received: dict[tuple[int, int], float] = {}
        self._lock = threading.Lock()
        self.node.create_subscription(PosePrediction, "/posevla/prediction", self._on_pred, QoSProfile(depth=100))
        self.ex = SingleThreadedExecutor(context=ctx)
        self.ex.add_node(self.node)
        self._stop = False
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()
        rng = np.random.default_rng(0)
        self.rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        self.depth = rng.uniform(0.4, 1.5, (H, W)).astype(np.float32)

    def _spin(self) -> None:
        while not self._stop:
            self.ex.spin_once(timeout_sec=0.05)

    def _on_pred(self, msg) -> None:
        with self._lock:
            self.received.setdefault((msg.header.stamp.sec, msg.header.stamp.nanosec), time.monotonic())

    def publishers(self, name: str):
        from rclpy.node import Node
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import CameraInfo, Image

        n = Node(name, context=self.ctx)
        pubs = (n.create_publisher(Image, "/camera/color/image_raw", qos_profile_sensor_data),
                n.create_publisher(Image, "/camera/aligned_depth_to_color/image_raw", qos_profile_sensor_data),
                n.create_publisher(CameraInfo, "/camera/color/camera_info", qos_profile_sensor_data))
        return n, pubs

    def stamp(self):
        return self.node.get_clock().now().to_msg()

    def frame(self, stamp, depth: bool = True, malformed: bool = False):
        from posevla_ros.ros_io import conversions as conv

        K = np.array([[500.0, 0, self.W / 2], [0, 500.0, self.H / 2], [0, 0, 1]])
        rgb = conv.rgb_to_image(self.rgb)
        if malformed:
            rgb.step = 7
        info = conv.K_to_camera_info(K, self.W, self.H)
        d = conv.depth_to_image(self.depth) if depth else None
        for m in (rgb, info, d):
            if m is not None:
                m.header.stamp, m.header.frame_id = stamp, "camera_color_optical_frame"
        return rgb, info, d

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.node.destroy_node()


def wait_subscribed(pubs, timeout: float = 60.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if all(p.get_subscription_count() > 0 for p in pubs):
            return True
        time.sleep(0.05)
    return False


def good_until_answer(io: Io, pubs, timeout: float, period: float = 0.1):
    """Publish good frames every ``period`` s until one is answered. Returns (time to answer
    from the first good frame, latency of the answered frame, whether the first frame was
    the one answered) or (None, None, False)."""
    sent: dict[tuple[int, int], float] = {}
    t_first = None
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with io._lock:
            hit = [(k, io.received[k]) for k in sent if k in io.received]
        if hit:
            k, t_rx = min(hit, key=lambda e: e[1])
            return t_rx - t_first, t_rx - sent[k], sent[k] == t_first
        st = io.stamp()
        rgb, info, d = io.frame(st)
        t = time.monotonic()
        pubs[2].publish(info)
        pubs[1].publish(d)
        pubs[0].publish(rgb)
        sent[(st.sec, st.nanosec)] = t
        t_first = t if t_first is None else t_first
        time.sleep(period)
    return None, None, False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tries", type=int, default=10)
    ap.add_argument("--burst", type=int, default=1000)
    ap.add_argument("--burst-s", type=float, default=3.0, help="spread the burst over this many seconds")
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--timeout", type=float, default=90.0)
    ap.add_argument("--steady-s", type=float, default=10.0)
    ap.add_argument("--rate-hz", type=float, default=0.0, help="policy rate_hz (0: as fast as it runs)")
    ap.add_argument("--stream-hz", type=float, default=0.0,
                    help="also run a steady good RGB-D stream at this rate through every try (0: none)")
    ap.add_argument("--full-model", action="store_true", help="a random model of the default (demo) size")
    ap.add_argument("--match-wait-s", type=float, default=0.0,
                    help="wait this long after the new publishers see the subscription (the policy's "
                         "reader may match a new writer later than the writer matches the reader)")
    ap.add_argument("--same-publishers", action="store_true",
                    help="send the good frames through the burst's publishers instead of new ones")
    ap.add_argument("--graph", action="store_true", help="run `posevla run policy` (policy + executor)")
    ap.add_argument("--out", default=None, help="write the numbers as JSON here")
    a = ap.parse_args(argv)
    W, H = (int(v) for v in a.size.split("x"))
    os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    import rclpy

    tmp = Path(tempfile.mkdtemp(prefix="bench_burst_"))
    _save_model(tmp / "ckpt", tiny=not a.full_model)
    log = open(tmp / "policy.log", "w")
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", PYTHONUNBUFFERED="1")
    if a.graph:     # policy_node + executor_node in one process, as `posevla run policy`
        cmd = ["-m", "posevla_ros.cli", "run", "policy", "--checkpoint", str(tmp / "ckpt"), "-p", "device=cpu",
               "-p", "instruction=pick up the red cube", "-p", f"rate_hz={a.rate_hz}"]
    else:
        cmd = ["-m", "posevla_ros.nodes.policy_node", "--ros-args", "-p", f"checkpoint:={tmp / 'ckpt'}", "-p", "device:=cpu",
               "-p", "instruction:=pick up the red cube", "-p", f"rate_hz:={a.rate_hz}"]
    proc = subprocess.Popen([sys.executable, *cmd],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    io = Io(ctx, W, H)
    res: dict = {"size": a.size, "burst": a.burst, "tries": []}
    try:
        burst_node, burst_pubs = io.publishers("burst_pub")
        assert wait_subscribed(burst_pubs, 120), "policy_node did not subscribe"
        _, lat, _ = good_until_answer(io, burst_pubs, 120)
        assert lat is not None, "policy_node never answered a first frame"
        stream_stop = threading.Event()
        if a.stream_hz > 0:
            stream_sent: dict = {}
            s_node, s_pubs = io.publishers("stream_pub")
            wait_subscribed(s_pubs, 30)

            def stream():
                while not stream_stop.is_set():
                    st = io.stamp()
                    rgb, info, d = io.frame(st)
                    stream_sent[(st.sec, st.nanosec)] = time.monotonic()
                    s_pubs[2].publish(info), s_pubs[1].publish(d), s_pubs[0].publish(rgb)
                    stream_stop.wait(1 / a.stream_hz)
            threading.Thread(target=stream, daemon=True).start()
            time.sleep(2.0)
        for i in range(a.tries):
            t0 = time.monotonic()
            for j in range(a.burst):
                rgb, info, _ = io.frame(io.stamp(), depth=False, malformed=j % 10 == 0)
                burst_pubs[2].publish(info)
                burst_pubs[0].publish(rgb)
                time.sleep(max(0.0, t0 + (j + 1) * a.burst_s / a.burst - time.monotonic()))
            t_burst = time.monotonic() - t0
            if a.stream_hz > 0:     # time to the first answer to a stream frame sent after the burst
                t_end, tta, lat = time.monotonic(), None, None
                while time.monotonic() - t_end < a.timeout and tta is None:
                    with io._lock:
                        hits = [(io.received[k], t) for k, t in list(stream_sent.items())
                                if t >= t_end and k in io.received]
                    if hits:
                        t_rx, t_tx = min(hits)
                        tta, lat = t_rx - t_end, t_rx - t_tx
                    time.sleep(0.01)
                res["tries"].append({"burst_s": round(t_burst, 2), "time_to_answer_s": tta, "latency_s": lat})
                print(f"try {i}: burst {a.burst} msgs in {t_burst:.2f} s; time to answer "
                      f"{'none' if tta is None else f'{tta:.3f} s'}", flush=True)
                continue
            node, pubs = (None, burst_pubs) if a.same_publishers else io.publishers(f"good_pub_{i}")
            wait_subscribed(pubs, 30)
            time.sleep(a.match_wait_s)
            tta, lat, first = good_until_answer(io, pubs, a.timeout)
            if node is not None:
                node.destroy_node()
            res["tries"].append({"burst_s": round(t_burst, 2), "time_to_answer_s": tta, "latency_s": lat,
                                 "first_frame_answered": first})
            print(f"try {i}: burst {a.burst} msgs in {t_burst:.2f} s; time to answer "
                  f"{'none' if tta is None else f'{tta:.3f} s'}; first good frame answered: {first}", flush=True)
        stream_stop.set()
        # steady 30 Hz stream
        node, pubs = io.publishers("steady_pub")
        wait_subscribed(pubs, 30)
        time.sleep(1.0)
        sent: dict = {}
        t0 = time.monotonic()
        while time.monotonic() - t0 < a.steady_s:
            st = io.stamp()
            rgb, info, d = io.frame(st)
            sent[(st.sec, st.nanosec)] = time.monotonic()
            pubs[2].publish(info), pubs[1].publish(d), pubs[0].publish(rgb)
            time.sleep(max(0.0, 1 / 30 - (time.monotonic() - t0) % (1 / 30)))
        time.sleep(1.0)
        with io._lock:
            lats = sorted(io.received[k] - t for k, t in sent.items() if k in io.received)
        res["steady"] = {"sent": len(sent), "predictions": len(lats), "rate_hz": len(lats) / a.steady_s,
                         "latency_median_ms": 1000 * statistics.median(lats) if lats else None,
                         "latency_p90_ms": 1000 * lats[int(0.9 * (len(lats) - 1))] if lats else None}
        print("steady:", res["steady"], flush=True)
    finally:
        io.close()
        rclpy.shutdown(context=ctx)
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    t = [r["time_to_answer_s"] for r in res["tries"]]
    done = sorted(x for x in t if x is not None)
    res["summary"] = {"n": len(t), "answered": len(done),
                      "first_frame_answered": sum(1 for r in res["tries"] if r.get("first_frame_answered")), "over_2s": sum(1 for x in t if x is None or x > 2),
                      "median_s": statistics.median(done) if done else None, "max_s": done[-1] if done else None,
                      "policy_exit": proc.returncode, "policy_log": str(tmp / "policy.log")}
    print("summary:", res["summary"], flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
