"""Evaluator logic (plain Python): Wilson interval, summary + report artifacts, the episode
loop, media subsampling and the operator's input. The node over DDS is in
test/ros/test_evaluator_node.py; the MuJoCo sim loop in test/e2e/test_collect_eval.py."""
from __future__ import annotations

import json

import numpy as np
import pytest

from posevla_ros.logic import report
from posevla_ros.logic.evaluation import EvaluationLoop, LoopConfig, MediaCollector, finish


@pytest.mark.parametrize("k,n,lo,hi", [(5, 10, 0.2366, 0.7634), (0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0),
                                       (1, 2, 0.0945, 0.9055), (81, 263, 0.2553, 0.3662)])
def test_wilson_reference_values(k, n, lo, hi):
    a, b = report.wilson_interval(k, n)
    assert a == pytest.approx(lo, abs=1e-4) and b == pytest.approx(hi, abs=1e-4)


def test_wilson_properties():
    assert report.wilson_interval(0, 0) == (0.0, 1.0)
    for n in (1, 3, 17, 200):
        for k in range(n + 1):
            lo, hi = report.wilson_interval(k, n)
            assert 0.0 <= lo <= k / n <= hi <= 1.0
    # narrower with more data at the same rate
    assert np.subtract(*report.wilson_interval(50, 100)[::-1]) < np.subtract(*report.wilson_interval(5, 10)[::-1])
    with pytest.raises(ValueError):
        report.wilson_interval(3, 2)


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
        m = report.EpisodeMedia()
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
    assert s["ci95"] == pytest.approx(list(report.wilson_interval(2, 3)))
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
