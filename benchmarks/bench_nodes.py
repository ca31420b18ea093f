"""Node-graph benchmark: what do the ROS nodes add on top of the model?

- end-to-end latency: Image/depth/CameraInfo publish -> JointTrajectory received, through
  a real policy_node and executor_node over DDS (one process, on the executor every
  posevla process uses: ``runner.make_executor``; POSEVLA_EXECUTOR picks the kind),
- bare ``model.predict()`` on the same decoded inputs, interleaved in the same run,
- ratio of the medians (goal <= 1.10),
- executor time per prediction (camera->base, safety, IK, FK checks, timing).

So that every prediction reaches a trajectory whatever the checkpoint predicts, the model
is wrapped: the real ``predict`` runs in full, then its waypoints are replaced by fixed
reachable ones (``ReachableWaypoints``). Model: the shipped demo checkpoint when present,
else a random tiny PoseVLA with its ``<no_object>`` answer forbidden (random weights refuse
anything). Input: the sim frame of benchmarks.common.sim_frame (seed 1000), on which the model
finds the object and decodes every pose token; that is checked before anything is timed (on a
random frame the model refuses after one step and both times were those of a refusal).

    python benchmarks/bench_nodes.py --out bench_results     (or run(out_dir) from Python)
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.common import forbid_refusal, require_full_answer, sim_frame  # noqa: E402

Q_HOME = np.array([0.0, -0.3, 0.0, -2.2, 0.0, 1.9, 0.785])
H, W = 224, 224
BENCH = "bench_nodes"
FRAME = "camera_color_optical_frame"


class ReachableWaypoints:
    """Runs the real model, then swaps in fixed reachable camera-frame waypoints. Each real
    answer that is not a full one (see ``require_full_answer``) is kept in ``errors``: the
    frames policy_node decoded from the messages must be answered as the bare frame is."""

    def __init__(self, model, waypoints):
        self.model, self.waypoints, self.errors = model, waypoints, []

    def predict(self, rgb, depth, K, instruction):
        pred = self.model.predict(rgb, depth, K, instruction)
        try:
            require_full_answer(BENCH, f"policy_node's model on '{instruction}'", pred, self.model)
        except RuntimeError as e:
            self.errors.append(str(e))
        pred.waypoints, pred.valid = list(self.waypoints), True
        pred.waypoint_dt = pred.waypoint_dt or 0.5
        return pred


def _load_model():
    from posevla_core.paths import default_checkpoint

    ckpt = default_checkpoint()
    if ckpt.is_dir():
        from posevla_core.policies.factory import load_policy

        return load_policy(ckpt, device="cpu"), str(ckpt)
    import torch

    from posevla_core.policies.small.configuration import PoseVLAConfig
    from posevla_core.policies.small.modeling import PoseVLA

    torch.manual_seed(0)
    return forbid_refusal(PoseVLA(PoseVLAConfig.tiny()).eval()), "random tiny PoseVLA, <no_object> forbidden"


def run(out_dir: str | Path, n: int = 20, warmup: int = 3) -> dict:
    import rclpy
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from scipy.spatial.transform import Rotation
    from sensor_msgs.msg import CameraInfo, Image, JointState
    from trajectory_msgs.msg import JointTrajectory

    from posevla_core.geometry import se3
    from posevla_core.poses import Pose, Waypoint
    from posevla_ros import params
    from posevla_ros.launching.runner import close_graph, make_executor
    from posevla_ros.logic.planning import load_kinematics
    from posevla_ros.nodes.executor_node import ExecutorNode
    from posevla_ros.nodes.policy_node import PolicyNode
    from posevla_ros.ros_io import conversions as conv

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # the sim Panda's URDF from the package (the default, empty, waits for /robot_description)
    ex_params = dict(params.defaults(params.EXECUTOR_PARAMS), use_tf=False, robot_description_file="posevla://panda")
    T_base_cam = se3.make_T([1.2, 0.05, 0.6], Rotation.from_euler("xyz", [-110, 0, 90], degrees=True).as_quat())
    t, q = se3.split_T(T_base_cam)
    ex_params["camera_to_base.translation"], ex_params["camera_to_base.rotation_xyzw"] = t.tolist(), q.tolist()
    kin = load_kinematics(ex_params)
    targets = [kin.fk(Q_HOME + d) for d in np.linspace(0, 1, 4)[:, None] * np.array([0.2, 0.2, 0, 0.15, 0, -0.1, 0.1])]
    wps = [Waypoint(Pose.from_matrix(se3.inv_T(T_base_cam) @ T), 1.0) for T in targets]
    from posevla_core.policies.base import set_inference_threads
    from posevla_ros import params

    defaults = params.defaults(params.POLICY_PARAMS)
    threads = set_inference_threads(defaults["inference_threads"])      # what policy_node does before its load
    base_model, model_name = _load_model()
    base_model.set_decoding(defaults["decoding"])                       # what policy_node's load_model does
    model = ReachableWaypoints(base_model, wps)

    rgb, depth, K, instruction, _ = sim_frame(width=W, height=H)
    require_full_answer(BENCH, f"the bare model on '{instruction}'", base_model.predict(rgb, depth, K, instruction),
                        base_model)

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    nodes, ex = [], None
    try:
        policy = PolicyNode(model=model, context=ctx, parameter_overrides=[
            Parameter("rate_hz", value=0.0), Parameter("instruction", value=instruction),
            Parameter("max_image_age_s", value=30.0)])
        executor = ExecutorNode(kinematics=kin, context=ctx, parameter_overrides=[
            Parameter(k, value=v) for k, v in params.typed_overrides(params.EXECUTOR_PARAMS, ex_params).items()])
        io = rclpy.create_node("bench_io", context=ctx)
        nodes = [policy, executor, io]
        pubs = [io.create_publisher(Image, "/camera/color/image_raw", qos_profile_sensor_data),
                io.create_publisher(Image, "/camera/aligned_depth_to_color/image_raw", qos_profile_sensor_data),
                io.create_publisher(CameraInfo, "/camera/color/camera_info", qos_profile_sensor_data)]
        js = io.create_publisher(JointState, "/joint_states", QoSProfile(depth=10))
        received: list[float] = []
        io.create_subscription(JointTrajectory, ex_params["controller_topic"],
                               lambda m: received.append(time.perf_counter()), QoSProfile(depth=10))
        ex = make_executor(ctx, 4)
        executor_kind = type(ex).__name__
        for node in nodes:
            ex.add_node(node)

        def spin_until(pred, timeout):
            end = time.monotonic() + timeout
            while time.monotonic() < end and not pred():
                ex.spin_once(timeout_sec=0.005)
            return pred()

        js_msg = JointState(name=list(ex_params["joint_names"]), position=list(Q_HOME))
        spin_until(lambda: all(p.get_subscription_count() for p in pubs) and
                   (js.publish(js_msg) or executor.joint_positions() is not None), 60)
        e2e, bare = [], []
        for i in range(warmup + n):
            stamp = io.get_clock().now().to_msg()
            msgs = [conv.rgb_to_image(rgb), conv.depth_to_image(depth), conv.K_to_camera_info(K, W, H)]
            for m in msgs:
                m.header.stamp, m.header.frame_id = stamp, FRAME
            before = len(received)
            t0 = time.perf_counter()
            for p, m in zip(pubs[::-1], msgs[::-1]):  # info, depth, then the image
                p.publish(m)
            if not spin_until(lambda: len(received) > before, 120):
                raise RuntimeError(f"no trajectory for frame {i}: {executor.last_result}")
            js.publish(js_msg)  # the arm did not move: same start state every time
            spin_until(lambda: False, 0.02)
            t1 = time.perf_counter()
            base_model.predict(rgb, depth, K, instruction)
            t2 = time.perf_counter()
            if i >= warmup:
                e2e.append((received[-1] - t0) * 1000.0)
                bare.append((t2 - t1) * 1000.0)
        pred = model.predict(rgb, depth, K, instruction)
        if model.errors:
            raise RuntimeError(f"{model.errors[0]} ({len(model.errors)} such answers)")
        exec_ms = []
        for _ in range(n):
            t0 = time.perf_counter()
            res = executor.core.process(pred, T_base_cam, Q_HOME, 0.0)
            exec_ms.append((time.perf_counter() - t0) * 1000.0)
            assert res.ok, res.reason
    finally:
        if ex is not None:
            ex.shutdown()
        close_graph(nodes, ctx)

    med = statistics.median
    result = {
        "model": model_name, "instruction": instruction, "frames": n, "image": [H, W], "ros_executor": executor_kind,
        "inference_threads": threads,
        "e2e_ms_median": med(e2e), "e2e_ms_p90": float(np.percentile(e2e, 90)),
        "predict_ms_median": med(bare), "predict_ms_p90": float(np.percentile(bare, 90)),
        "ratio_e2e_over_predict": med(e2e) / med(bare), "ratio_goal": 1.10,
        "ratio_ok": med(e2e) / med(bare) <= 1.10,
        "executor_ms_median": med(exec_ms), "executor_ms_p90": float(np.percentile(exec_ms, 90)),
        "waypoints_per_prediction": len(wps),
    }
    (out_dir / "bench_nodes.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench_results")
    ap.add_argument("-n", type=int, default=20)
    a = ap.parse_args()
    r = run(a.out, a.n)
    for k, v in r.items():
        print(f"{k:28s} {v:.2f}" if isinstance(v, float) else f"{k:28s} {v}")
