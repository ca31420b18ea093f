"""Evaluator: Wilson interval, summary + report artifacts, the episode loop (plain Python),
and the evaluator node over real DDS against a small scripted world node that serves
/sim/reset and /sim/success (the MuJoCo sim itself is exercised in test_collect_eval_e2e)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from posevla_ros.logic import report as R
from posevla_ros.logic.evaluation import EvaluationLoop, LoopConfig, MediaCollector, finish


@pytest.mark.parametrize("k,n,lo,hi", [(5, 10, 0.2366, 0.7634), (0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0),
                                       (1, 2, 0.0945, 0.9055), (81, 263, 0.2553, 0.3662)])
def test_wilson_reference_values(k, n, lo, hi):
    a, b = R.wilson_interval(k, n)
    assert a == pytest.approx(lo, abs=1e-4) and b == pytest.approx(hi, abs=1e-4)


def test_wilson_properties():
    assert R.wilson_interval(0, 0) == (0.0, 1.0)
    for n in (1, 3, 17, 200):
        for k in range(n + 1):
            lo, hi = R.wilson_interval(k, n)
            assert 0.0 <= lo <= k / n <= hi <= 1.0
    # narrower with more data at the same rate
    assert np.subtract(*R.wilson_interval(50, 100)[::-1]) < np.subtract(*R.wilson_interval(5, 10)[::-1])
    with pytest.raises(ValueError):
        R.wilson_interval(3, 2)


def _records():
    return [
        {"episode": 0, "seed": 7, "task": "pick", "instruction": "pick up the red cube", "success": True,
         "time_to_success_s": 4.0, "duration_s": 4.0, "timeout": False, "reason": "success"},
        {"episode": 1, "seed": 8, "task": "pick", "instruction": "pick up the <b>blue</b> ball", "success": False,
         "time_to_success_s": None, "duration_s": 10.0, "timeout": True, "reason": "timeout"},
        {"episode": 2, "seed": 9, "task": "pick", "instruction": "pick up the cube", "success": True,
         "time_to_success_s": 6.0, "duration_s": 6.0, "timeout": False, "reason": "success"},
    ]


def test_summary_and_report_artifacts(tmp_path):
    rng = np.random.default_rng(0)
    media = {}
    for i in range(3):
        m = R.EpisodeMedia()
        for j in range(5):
            m.frames.append(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
            m.t.append(j * 0.5)
            m.joints.append(rng.normal(size=7).tolist())
            m.ee_xyz.append([0.5, 0.0, 0.3 + 0.01 * j])
            m.gripper.append(1.0 if j < 3 else 0.0)
        media[i] = m
    s = finish(tmp_path, _records(), "pick", media, checkpoint="ckpt", seed=7)
    assert (s["episodes"], s["successes"]) == (3, 2)
    assert s["success_rate"] == pytest.approx(2 / 3)
    assert s["ci95"] == pytest.approx(list(R.wilson_interval(2, 3)))
    assert s["time_to_success_s"]["mean"] == pytest.approx(5.0) and s["timeouts"] == 1
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    for key in ("episodes", "successes", "success_rate", "task", "ci95", "per_episode"):
        assert key in on_disk
    assert on_disk["checkpoint"] == "ckpt" and len(on_disk["per_episode"]) == 3
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert [json.loads(x)["episode"] for x in lines] == [0, 1, 2]
    html = (tmp_path / "report.html").read_text()
    assert "2/3" in html and "Wilson" in html and "&lt;b&gt;blue" in html      # escaped
    from PIL import Image

    gif = Image.open(tmp_path / on_disk["artifacts"]["gif"])
    assert gif.format == "GIF" and gif.n_frames == 5
    assert on_disk["artifacts"]["gif_episode"] == 0                           # first success
    for p in on_disk["artifacts"]["plots"] + ["plots/episode_001.png", "media/ep_002_last.png"]:
        assert Image.open(tmp_path / p).size[0] > 0, p
        assert p.split("/")[-1] in html or p.startswith("plots/episode") or p.startswith("media/")


def test_report_without_media_or_episodes(tmp_path):
    s = finish(tmp_path, [], "put")
    assert s["episodes"] == 0 and s["ci95"] == [0.0, 1.0] and s["artifacts"]["gif"] is None
    assert (tmp_path / "report.html").is_file()


class ScriptedIO:
    """A plain-Python world for the loop: a clock advanced by sleep, success after a given
    time per seed, a log of every call."""

    def __init__(self, success_after: dict[int, float | None], fail_reset_seed: int | None = None) -> None:
        self.t = 0.0
        self.success_after, self.fail_reset_seed = success_after, fail_reset_seed
        self.calls: list[tuple] = []
        self.seed = None
        self.t_release = None
        self.saved = 0

    def now(self):
        return self.t

    def sleep(self, s):
        self.t += s

    def hold(self):
        self.calls.append(("hold",))

    def release(self):
        self.calls.append(("release",))
        self.t_release = self.t

    def reset(self, seed, task):
        self.calls.append(("reset", seed, task))
        if seed == self.fail_reset_seed:
            raise RuntimeError("sim exploded")
        self.seed = seed
        return f"{task} object {seed}"

    def send_instruction(self, text):
        self.calls.append(("instruction", text))

    def outcome(self):
        after = self.success_after.get(self.seed)
        return "success" if after is not None and self.t - self.t_release >= after else None

    def record_start(self, instruction):
        self.calls.append(("record_start", instruction))

    def record_stop(self):
        self.calls.append(("record_stop",))
        self.saved += 1
        return self.saved - 1

    def media_begin(self, i):
        pass

    def media_end(self, i):
        pass


def test_episode_loop_success_timeout_and_errors():
    io = ScriptedIO({100: 2.0, 101: None, 103: 0.0}, fail_reset_seed=102)
    cfg = LoopConfig(task="pick", episodes=4, seed=100, timeout_s=5.0, settle_s=0.0, success_poll_hz=4.0,
                     instruction_period_s=1.0)
    recs = EvaluationLoop(io, cfg, log=lambda s: None).run()
    assert [r["success"] for r in recs] == [True, False, False, True]
    assert recs[0]["time_to_success_s"] == pytest.approx(2.0) and recs[0]["instruction"] == "pick object 100"
    assert recs[1]["timeout"] and recs[1]["duration_s"] >= 5.0 and recs[1]["reason"] == "timeout"
    assert recs[2]["reason"].startswith("error: sim exploded") and recs[2]["dataset_episode_index"] is None
    assert recs[3]["time_to_success_s"] == pytest.approx(0.0)
    # every recorded rollout is saved, success or not; the robot is held after each episode
    assert [r["dataset_episode_index"] for r in recs] == [0, 1, None, 2]
    i_start = io.calls.index(("record_start", "pick object 100"))
    assert io.calls[i_start + 1] == ("release",)                 # recording starts before motion
    assert io.calls[io.calls.index(("record_stop",)) - 1] == ("hold",)
    # the instruction is re-published during a long episode
    n_instr = sum(1 for c in io.calls if c == ("instruction", "pick object 101"))
    assert n_instr >= 5


def test_collection_mode_discards_failures_and_stops_at_target():
    io = ScriptedIO({0: 1.0, 1: None, 2: 0.5, 3: 0.5})
    io.discards = 0

    def record_discard():
        io.calls.append(("record_discard",))
    io.record_discard = record_discard
    cfg = LoopConfig(episodes=10, seed=0, timeout_s=2.0, settle_s=0.0, keep_failures=False, target_successes=2)
    recs = EvaluationLoop(io, cfg, log=lambda s: None).run()
    assert [r["success"] for r in recs] == [True, False, True]          # stopped at 2 successes
    assert [r["dataset_episode_index"] for r in recs] == [0, None, 1]
    assert io.calls.count(("record_discard",)) == 1


def test_episode_loop_abort():
    io = ScriptedIO({})
    loop = EvaluationLoop(io, LoopConfig(episodes=5, timeout_s=1.0, settle_s=0.0), log=lambda s: None)
    orig = io.reset

    def reset(seed, task):
        if seed == 1001:
            loop.abort()
        return orig(seed, task)
    io.reset = reset
    recs = loop.run()
    assert len(recs) == 2 and recs[1]["reason"] == "aborted"


def test_media_collector_subsamples():
    mc = MediaCollector(frame_period_s=0.5, max_side=32, fk=lambda q: np.eye(4))
    img = np.zeros((96, 128, 3), np.uint8)
    mc.add_frame(0.0, img)                   # no episode yet: ignored
    mc.begin(0, t0=10.0)
    for k in range(20):
        mc.add_frame(10.0 + 0.1 * k, img)
        mc.add_joints(10.0 + 0.1 * k, np.zeros(7), 1.0)
    mc.end(0)
    mc.add_frame(20.0, img)
    m = mc.media[0]
    assert len(m.frames) == 4 and max(m.frames[0].shape[:2]) <= 32
    assert len(m.t) == len(m.joints) == len(m.ee_xyz) == len(m.gripper) >= 9
    assert m.t[0] == pytest.approx(0.0)


# ------------------------------------------------------------ node over DDS
@pytest.mark.usefixtures("ros_context")
def test_evaluator_node_over_dds(ros_context, tmp_path, spin_until):
    """Real services and topics: a world node serves /sim/reset + /sim/success and the
    pipeline's stop / pause / resume; the evaluator runs 2 episodes without recording."""
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from std_msgs.msg import String
    from std_srvs.srv import Trigger

    from posevla_ros.nodes.evaluator_node import EvaluatorNode
    from posevla_ros.srv import ResetEpisode

    class World(Node):
        def __init__(self):
            super().__init__("fake_world", context=ros_context)
            self.instructions, self.events, self.t_release = [], [], None
            self.create_service(ResetEpisode, "/sim/reset", self.reset)
            self.create_service(Trigger, "/sim/success", self.success)
            for name in ("/posevla/stop", "/posevla/pause", "/posevla/resume"):
                self.create_service(Trigger, name, lambda q, r, name=name: self.event(name, r))
            self.create_subscription(String, "/posevla/instruction", lambda m: self.instructions.append(m.data), 10)
            self.seed = None

        def event(self, name, resp):
            self.events.append(name)
            if name == "/posevla/resume":
                self.t_release = self.get_clock().now().nanoseconds * 1e-9
            resp.success = True
            return resp

        def reset(self, req, resp):
            self.seed = req.seed
            resp.success, resp.instruction = True, f"{req.task} thing {req.seed}"
            return resp

        def success(self, req, resp):
            now = self.get_clock().now().nanoseconds * 1e-9
            resp.success = self.seed == 5 and self.t_release is not None and now - self.t_release > 0.3
            return resp

    world = World()
    params = [Parameter("episodes", value=2), Parameter("seed", value=5), Parameter("timeout_s", value=1.5),
              Parameter("task", value="pick"), Parameter("out", value=str(tmp_path)),
              Parameter("record", value=False), Parameter("settle_s", value=0.0),
              Parameter("success_poll_hz", value=10.0)]
    ev = EvaluatorNode(context=ros_context, parameter_overrides=params, fk=None)
    ex = MultiThreadedExecutor(num_threads=4, context=ros_context)
    ex.add_node(world)
    ex.add_node(ev)
    try:
        assert spin_until(ex, ev.done.is_set, timeout=60.0)
    finally:
        ev.destroy_node()
        world.destroy_node()
        ex.shutdown()
    s = ev.summary
    assert s is not None and (s["episodes"], s["successes"]) == (2, 1)
    assert s["per_episode"][0]["success"] and s["per_episode"][1]["timeout"]
    assert s["per_episode"][0]["instruction"] == "pick thing 5"
    assert "pick thing 5" in world.instructions and "pick thing 6" in world.instructions
    assert world.events.count("/posevla/resume") == 2 and "/posevla/stop" in world.events
    assert json.loads((tmp_path / "summary.json").read_text())["successes"] == 1
    assert (tmp_path / "report.html").is_file()


def test_operator_input_takes_each_say_only_when_it_applies():
    """A key pressed early never starts an episode; a mark counts only while one runs; the
    loop's wait ends on "ready" from another thread, or on stop."""
    import threading

    from posevla_ros.logic.operator_input import OperatorInput

    op = OperatorInput()
    assert op.set_ready()[0] is False and op.mark("success")[0] is False and op.outcome() is None
    waiting, result = threading.Event(), []

    def loop():
        waiting.set()
        result.append(op.wait_ready(lambda: False, poll_s=0.01))

    t = threading.Thread(target=loop)
    t.start()
    waiting.wait(10.0)
    while not op.set_ready()[0]:          # taken once the loop waits (its state, not a sleep)
        t.join(0.01)
    t.join(10.0)
    assert result == [True]
    assert op.mark("failure")[0] and op.outcome() == "failure"
    op.end()
    assert op.mark("success")[0] is False and op.set_ready()[0] is False
    assert op.wait_ready(lambda: True) is False
    with pytest.raises(ValueError):
        op.mark("maybe")
