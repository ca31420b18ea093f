"""make bench-robosuite's pieces that need no simulator: the table and the plot it writes from
evaluation summaries, and the step runner's resume rule."""
import json

from benchmarks import bench_robosuite

from posevla_ros.logic.report import wilson_interval


def _rows():
    rows = []
    for arm, k, t in (("Panda", 48, 5.8), ("UR5e", 0, None)):
        for policy in ("Pose-VLA", "scripted expert"):
            rows.append({"task": "Lift", "arm": arm, "policy": policy, "panda_demos": 60,
                         "demos_on_arm": 60 if arm == "Panda" else 0, "episodes": 50, "successes": k,
                         "ci95": list(wilson_interval(k, 50)), "median_time_to_success_s": t, "seed": 1000})
    return rows


def test_table_lists_success_interval_time_and_count(tmp_path):
    md = bench_robosuite.table_md(_rows())
    lines = md.strip().splitlines()
    assert len(lines) == 2 + 4
    assert "| Lift | Panda | 60 | Pose-VLA | 48/50 | 87%-99% | 5.8 s | 50 |" in lines
    assert "| Lift | UR5e | 0 | Pose-VLA | 0/50 | 0%-7% | - | 50 |" in lines
    assert "| Lift | Panda | - | scripted expert |" in md
    bench_robosuite.plot(_rows(), tmp_path / "success.png")
    assert (tmp_path / "success.png").stat().st_size > 10_000


def test_a_few_demo_row_gets_its_own_line_and_bar(tmp_path):
    rows = _rows() + [{**_rows()[2], "demos_on_arm": 10, "successes": 45, "ci95": list(wilson_interval(45, 50))}]
    md = bench_robosuite.table_md(rows)
    assert "| Lift | UR5e | 10 | Pose-VLA | 45/50 |" in md and "| Lift | UR5e | 0 | Pose-VLA | 0/50 |" in md
    bench_robosuite.plot(rows, tmp_path / "success.png")              # 3 groups: Panda, UR5e zero-shot, UR5e + 10 demos
    assert (tmp_path / "success.png").stat().st_size > 10_000


def test_sim_names_and_the_default_plan():
    assert bench_robosuite.sim_name("Lift:Panda") == "robosuite:Lift" and bench_robosuite.sim_name("Lift:UR5e") == "robosuite:Lift:UR5e"
    cfg = bench_robosuite.BenchConfig()
    assert cfg.evals["PickPlaceCan:Panda"] == cfg.evals["Lift:Panda"] == 50
    assert all(cfg.evals[f"Lift:{a}"] >= 20 for a in bench_robosuite.ARMS)
    assert cfg.eval_seed >= 1000 > cfg.demo_seed + max(cfg.demos.values())   # evaluation seeds never trained on
    assert all(k in cfg.evals and k.split(":")[1] != "Panda" for k in cfg.fewshot)   # compared with its zero-shot row


def test_runner_skips_finished_steps_and_restarts_cut_ones(tmp_path):
    run = bench_robosuite.Runner(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "meta.json").write_text("{}")
    run.timings["a"] = {"wall_s": 1.0, "command": "posevla --definitely-not-a-command"}
    run.step("a", ["--definitely-not-a-command"], tmp_path / "a" / "meta.json")   # done: not run
    try:                     # the same step with another command (another checkpoint) runs again
        run.step("a", ["--another-checkpoint-that-does-not-exist"], tmp_path / "a" / "meta.json")
    except RuntimeError as e:
        assert "step a failed" in str(e)
    else:
        raise AssertionError("a step whose command changed must run again")
    assert not (tmp_path / "a").exists()                                          # its old output is gone
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "partial").write_text("x")
    try:
        run.step("b", ["--version-that-does-not-exist"], tmp_path / "b" / "meta.json")
    except RuntimeError as e:
        assert "step b failed" in str(e)
    else:
        raise AssertionError("a failing step must raise")
    assert not (tmp_path / "b" / "partial").exists() and "b" not in json.loads(
        (tmp_path / "timings.json").read_text() if (tmp_path / "timings.json").exists() else "{}")


class _Plan(bench_robosuite.Runner):
    """The runner's plan without running it: every step's command, in order."""

    def __init__(self, work):
        super().__init__(work)
        self.commands = {}

    def step(self, name, args, done):
        self.commands[name] = args


def test_a_robosuite_camera_reaches_every_image_step_but_the_expert(tmp_path):
    """--camera agentview: the demos, the labeled scenes and the evaluations render robosuite's
    camera; the scripted expert reads the sim's state and takes none; --randomize-scenes draws our
    scene's shards as checkpoints/wide's were."""
    cfg = bench_robosuite.BenchConfig(camera="agentview", randomize_scenes=True)
    run = _Plan(tmp_path)
    bench_robosuite.train(run, cfg, "checkpoints/wide")
    try:
        bench_robosuite.evaluate(run, cfg, tmp_path / "ckpt")
    except FileNotFoundError:              # the rows read summaries this plan never wrote
        pass
    c = run.commands
    for name in ("collect_Lift", "collect_PickPlaceCan", "make_data_Lift", "make_data_PickPlaceCan", "eval_PickPlaceCan_Panda"):
        i = c[name].index("--camera")
        assert c[name][i + 1] == "agentview", name
    assert "--camera" not in c["expert_PickPlaceCan_Panda"]
    assert "--randomize" in c["make_data_motion"] and "--randomize" in c["make_data_grounding"]
    assert "--init" in c["train"] and "checkpoints/wide" in c["train"]
    plain = _Plan(tmp_path)
    bench_robosuite.train(plain, bench_robosuite.BenchConfig(), "checkpoints/demo")
    assert not any("--camera" in a or "--randomize" in a for a in plain.commands.values())
