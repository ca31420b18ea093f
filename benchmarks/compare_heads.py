"""Token-waypoint head vs flow-matching action expert, closed loop in the sim, same seeds.

For every checkpoint: ``apps.evaluate_main`` (the `posevla demo` graph: sim -> policy -> executor,
execution_mode complete for the token head, chunk for the flow head) on held-out seeds, while
a listener node in its own rclpy context records, over DDS, every JointTrajectory the
executor sends (with the sim time it arrived) and every PosePrediction's inference_ms.
Reported per checkpoint: success with its Wilson 95 % interval, median time to success,
median prediction latency, and the peak |jerk| of the commanded joint trajectory within
20 ms of a seam (a new trajectory replacing the running one), replayed as the sim's
trajectory follower executes it (``chunking.seam_profile``, 10 ms samples = the sim's
control period), max over episodes and the median of the per-episode peaks.

    python -m benchmarks.compare_heads --checkpoint checkpoints/demo --checkpoint runs/expert/flow \\
        --episodes 10 --seed 1000 --out runs/compare
"""
from __future__ import annotations

import argparse
import json
import statistics
import threading
from pathlib import Path

import numpy as np


class Listener:
    """Records arm trajectories (+ sim time of arrival) and prediction latencies in a thread."""

    def __init__(self, arm_topic: str = "/arm_controller/joint_trajectory") -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.qos import QoSProfile
        from rosgraph_msgs.msg import Clock
        from trajectory_msgs.msg import JointTrajectory

        from posevla_ros.msg import PosePrediction

        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx)
        self.node = Node("compare_heads_listener", context=self.ctx)
        self.lock = threading.Lock()
        self.sim_t = 0.0
        self.trajs: list = []
        self.latency_ms: list[float] = []
        self.node.create_subscription(Clock, "/clock", self._on_clock, 10)
        self.node.create_subscription(JointTrajectory, arm_topic, self._on_traj, QoSProfile(depth=100))
        self.node.create_subscription(PosePrediction, "/posevla/prediction", self._on_pred, QoSProfile(depth=100))
        self.ex = SingleThreadedExecutor(context=self.ctx)
        self.ex.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        while self.ctx.ok():
            self.ex.spin_once(timeout_sec=0.1)

    def _on_clock(self, msg) -> None:
        self.sim_t = msg.clock.sec + 1e-9 * msg.clock.nanosec

    def _on_traj(self, msg) -> None:
        if len(msg.points) < 2:        # stop / hold commands between episodes are not seams
            with self.lock:
                self.trajs.append(None)
            return
        times = np.array([p.time_from_start.sec + 1e-9 * p.time_from_start.nanosec for p in msg.points])
        pos = np.array([p.positions for p in msg.points])
        vel = np.array([p.velocities for p in msg.points]) if all(len(p.velocities) for p in msg.points) else None
        stamp = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
        with self.lock:
            self.trajs.append((self.sim_t, times, pos, vel, stamp if stamp > 0 else None))

    def _on_pred(self, msg) -> None:
        with self.lock:
            self.latency_ms.append(float(msg.inference_ms))

    def take(self) -> tuple[list, list[float]]:
        with self.lock:
            out = (self.trajs, self.latency_ms)
            self.trajs, self.latency_ms = [], []
        return out

    def close(self) -> None:
        self.ex.shutdown()
        self.node.destroy_node()
        self.ctx.try_shutdown()


def seam_jerks(trajs: list) -> list[float]:
    """Peak |jerk| at the seams of each run of consecutive trajectories (a hold splits runs)."""
    from posevla_core.geometry.chunking import seam_profile

    runs, cur = [], []
    for t in trajs + [None]:
        if t is None or (cur and t[0] < cur[-1][0]):      # hold, or the sim clock went back (reset)
            if len(cur) >= 2:
                runs.append(cur)
            cur = []
        else:
            cur.append(t)
    return [seam_profile(r, dt=0.01)["seam_jerk"] for r in runs]


def evaluate(checkpoint: str, episodes: int, seed: int, out: Path, listener: Listener, timeout_s: float) -> dict:
    from posevla_ros.cli.evaluate import evaluate_main

    listener.take()
    s = evaluate_main(checkpoint=checkpoint, task="pick", episodes=episodes, out=str(out), seed=seed,
                      timeout_s=timeout_s, overrides={"evaluator": {"record": False}})
    trajs, lat = listener.take()
    jerks = seam_jerks(trajs)
    lo, hi = s["ci95"]
    times = [e["time_to_success_s"] for e in s["per_episode"] if e.get("success")]
    from posevla_core.paths import head_of

    return {"checkpoint": checkpoint, "head": head_of(checkpoint), "episodes": s["episodes"],
            "successes": s["successes"], "ci95": [lo, hi],
            "median_time_to_success_s": statistics.median(times) if times else None,
            "median_latency_ms": statistics.median(lat) if lat else None, "predictions": len(lat),
            "trajectories": sum(t is not None for t in trajs),
            "seam_jerk_max": max(jerks) if jerks else 0.0,
            "seam_jerk_median": statistics.median(jerks) if jerks else 0.0,
            "per_episode": [{k: e.get(k) for k in ("seed", "success", "time_to_success_s", "duration_s")}
                            for e in s["per_episode"]]}


def table(rows: list[dict]) -> str:
    lines = ["| head (checkpoint) | success | Wilson 95 % | median time to success | median latency "
             "| peak seam jerk (max / median per run) |", "|---|---|---|---|---|---|"]
    for r in rows:
        t = r["median_time_to_success_s"]
        lines.append(f"| {r['head']} (`{r['checkpoint']}`) | {r['successes']}/{r['episodes']} | "
                     f"{r['ci95'][0]:.0%}-{r['ci95'][1]:.0%} | {'-' if t is None else f'{t:.1f} s'} | "
                     f"{r['median_latency_ms']:.0f} ms | {r['seam_jerk_max']:.0f} / {r['seam_jerk_median']:.0f} rad/s^3 |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", action="append", required=True)
    ap.add_argument("--episodes", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=40.0)
    ap.add_argument("--out", default="runs/compare")
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    listener = Listener()
    rows = []
    try:
        for i, ck in enumerate(a.checkpoint):
            rows.append(evaluate(ck, a.episodes, a.seed, out / f"run{i}", listener, a.timeout))
            (out / "compare.json").write_text(json.dumps(rows, indent=1))
    finally:
        listener.close()
    md = table(rows)
    (out / "compare.md").write_text(md + "\n")
    print("\n" + md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
