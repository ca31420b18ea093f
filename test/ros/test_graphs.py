"""One graph description (posevla_ros.launching.graphs) for the launch files and the in-process runner.

- Every graph, sim and real: the launch_ros kwargs (parameter files, then values) resolve to
  exactly the parameters the runner gives the node classes, with the same remappings, and
  every executable is installed.
- The runner really builds nodes from a spec: their parameters and remapped topics match.
- The launch files take their nodes from the same description: with launch_ros (a ROS
  install) their LaunchDescription is executed and compared with the runner's specs; here
  (no launch_ros) each launch file must be exactly one ``describe("<graph>")`` call and
  launching.launch_description must build every Node from ``spec.launch_kwargs()``.
- Bad graph arguments are one clear error before anything starts (CLI: one line, exit 1).
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from test.helpers.paths import REPO
from test.helpers.waiting import poll

import pytest

from posevla_ros import params as P
from posevla_ros.launching import graphs
from posevla_ros.launching.node_spec import node_param_specs

CASES = [("policy", {}), ("policy", {"camera_ns": "/wrist", "execution_mode": "complete", "use_sim_time": "true"}),
         ("sim_demo", {"task": "pick up the red cube"}),
         ("evaluate", {"sim": True, "task": "pick"}), ("evaluate", {"sim": "false", "task": "pick up the red cube",
                                                                  "camera_ns": "/wrist", "episodes": "3"}),
         ("collect", {"sim": "true", "teleop": "scripted", "task": "put"}),
         ("collect", {"sim": False, "teleop": "joy", "task": "pick up the red cube", "camera_ns": "/wrist"})]
EXPECTED_NODES = {
    ("policy", False): ["policy_node", "executor_node"],
    ("sim_demo", True): ["sim_node", "policy_node", "executor_node"],
    ("evaluate", True): ["sim_node", "policy_node", "executor_node", "recorder_node", "evaluator_node"],
    ("evaluate", False): ["policy_node", "executor_node", "recorder_node", "evaluator_node"],
    ("collect", True): ["sim_node", "teleop_node", "recorder_node", "evaluator_node"],
    ("collect", False): ["teleop_node", "recorder_node", "evaluator_node"],
}


def _is_sim(graph: str, args: dict) -> bool:
    return graph == "sim_demo" or (graph != "policy" and str(args.get("sim")).lower() == "true")


def _launch_side_parameters(spec) -> dict:
    """What launch_ros gives the node: each parameters entry in order (files by node name)."""
    values: dict = {}
    for entry in spec.launch_kwargs()["parameters"]:
        values.update(P.load_params_file(entry, spec.name) if isinstance(entry, str) else entry)
    return values


def _installed_executables() -> set[str]:
    from test.helpers.launch_files import installed_executables

    return installed_executables()


@pytest.mark.parametrize("graph,args", CASES)
def test_launch_and_runner_get_the_same_nodes(graph, args):
    specs = graphs.build(graph, args)
    assert [s.name for s in specs] == EXPECTED_NODES[(graph, _is_sim(graph, args))]
    exes = _installed_executables()
    for s in specs:
        kw = s.launch_kwargs()
        assert (kw["package"], kw["executable"], kw["name"]) == ("posevla_ros", s.name, s.name)
        assert kw["executable"] in exes
        assert [Path(f).is_file() for f in kw["parameters"][:-1]] == [True] * len(s.param_files)
        runner = s.parameters()
        assert P.typed_overrides(node_param_specs(s.name), _launch_side_parameters(s)) == runner
        assert kw["remappings"] == [tuple(r) for r in s.remappings]
        assert s.node_class().__name__ == s.target.split(":")[1]


def test_graph_values_that_once_differed():
    """A bug once seen: the launched evaluation ran the executor in replace mode without
    the sim's camera pose. One description now gives both the same, sim and real."""
    sim = {s.name: s.parameters() for s in graphs.build("evaluate", {"sim": True, "task": "pick"})}
    assert sim["executor_node"]["execution_mode"] == "complete"
    assert sim["executor_node"]["camera_pose_topic"] == "/sim/camera_pose"
    assert sim["executor_node"]["use_tf"] is False
    assert all(sim[n]["use_sim_time"] for n in sim if n != "sim_node") and not sim["sim_node"].get("use_sim_time")
    assert sim["recorder_node"]["root"].endswith("rollouts")
    real = {s.name: s.parameters() for s in graphs.build("evaluate", {"sim": False, "task": "pick up the red cube"})}
    assert real["evaluator_node"]["reset_service"] == real["evaluator_node"]["success_service"] == ""
    assert real["evaluator_node"]["instruction"] == "pick up the red cube"
    assert real["executor_node"].get("camera_pose_topic", "") == "" and not real["executor_node"]["use_sim_time"]
    assert real["executor_node"]["camera_to_base.translation"] == [1.2, 0.45, 0.55]   # robot config
    demo = {s.name: s.parameters() for s in graphs.build("sim_demo", {"task": "pick up the red cube"})}
    assert demo["sim_node"]["publish_instruction"] is True and demo["sim_node"]["task"] == "pick up the red cube"
    col = {s.name: s.parameters() for s in graphs.build("collect", {"sim": False, "teleop": "joy", "task": "lift it"})}
    assert col["teleop_node"]["episode_services"] == "evaluator"
    assert col["evaluator_node"]["keep_failures"] is False and col["evaluator_node"]["target_successes"] == 10
    assert col["recorder_node"]["instruction"] == "lift it"


@pytest.mark.parametrize("graph,args,match", [
    ("evaluate", {"sim": True, "task": "pick up the banana"}, "cannot stage 'pick up the banana'"),
    ("evaluate", {"sim": False, "task": " "}, "needs the instruction"),
    ("collect", {"sim": False, "teleop": "scripted", "task": "x"}, "needs the sim"),
    ("collect", {"sim": True, "teleop": "mouse", "task": "pick"}, "teleop 'mouse'"),
    ("sim_demo", {"task": "stack the red cube on the blue cube"}, "more than one object"),
    ("policy", {"execution_mode": "fast"}, "execution_mode 'fast'"),
    ("policy", {"robo": "panda"}, "no argument 'robo'"),
    ("evaluate", {"episodes": "many"}, "episodes:='many'"),
])
def test_bad_arguments_are_one_clear_error(graph, args, match):
    with pytest.raises(ValueError, match=match):
        graphs.build(graph, args)


def test_cli_refuses_an_instruction_the_sim_cannot_stage(tmp_path):
    out = tmp_path / "eval"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "posevla_ros.cli", "evaluate", "--sim", "--task", "pick up the banana",
                        "--out", str(out)], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("posevla evaluate: error: the sim cannot stage"), r.stderr
    assert not out.exists()                                       # nothing started
    r = subprocess.run([sys.executable, "-m", "posevla_ros.cli", "collect", "--teleop", "scripted", "--task", "pick",
                        "--out", str(out)], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert r.returncode == 1 and r.stderr.startswith("posevla collect: error: teleop 'scripted' needs the sim"), r.stderr


def test_runner_builds_the_spec(ros_context):
    """The in-process runner: a graph's nodes get the spec's parameters and remappings."""
    from posevla_ros.launching.runner import build_graph, destroy_nodes

    specs = [s for s in graphs.build("collect", {"sim": False, "teleop": "joy", "task": "lift it", "camera_ns": "/wrist"})
             if s.name in ("recorder_node", "evaluator_node")]
    nodes = build_graph(specs, ros_context, kwargs={"evaluator_node": {"autostart": False, "fk": None}})
    try:
        for spec, node in zip(specs, nodes):
            assert node.get_name() == spec.name
            for k, v in spec.parameters().items():
                assert node.get_parameter(k).value == (tuple(v) if isinstance(v, list) and not v else v) or \
                    list(node.get_parameter(k).value) == v, k
        topics = {sub.topic_name for sub in nodes[0].subscriptions}
        assert {"/wrist/color/image_raw", "/wrist/color/camera_info"} <= topics
        assert "/camera/color/image_raw" not in topics
        assert "/wrist/color/image_raw" in {sub.topic_name for sub in nodes[1].subscriptions}
    finally:
        destroy_nodes(nodes)


# ------------------------------------------------------------------ the launch files
def _have_launch_ros() -> bool:
    try:
        import launch_ros  # noqa: F401
        from launch import LaunchDescription  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("graph", sorted(graphs.LAUNCH_FILES))
def test_launch_file_is_the_graph(graph):
    """Without launch_ros: each launch file is one ``describe(<its graph>)`` call (no nodes of
    its own), and launching.launch_description builds every posevla node from ``spec.launch_kwargs()``."""
    tree = ast.parse((REPO / "launch" / graphs.LAUNCH_FILES[graph]).read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert [(getattr(c.func, "id", None), [a.value for a in c.args]) for c in calls] == [("describe", [graph])]
    imports = [n for n in tree.body if isinstance(n, ast.ImportFrom)]
    assert [(i.module, [a.name for a in i.names]) for i in imports] == [("posevla_ros.launching.launch_description", ["describe"])]

    lg = ast.parse((REPO / "posevla_ros" / "launching" / "launch_description.py").read_text())
    node_calls = [c for c in ast.walk(lg) if isinstance(c, ast.Call) and getattr(c.func, "id", None) == "Node"]
    ours = [c for c in node_calls if not any(k.arg == "package" for k in c.keywords)]
    assert len(ours) == 1 and ast.unparse(ours[0]).startswith("Node(**spec.launch_kwargs(), ")
    assert [k.arg for k in ours[0].keywords] == [None, "on_exit"]     # the spec's kwargs; a graph-ending node
    assert all(ast.unparse(k.value) == "'rviz2'" for c in node_calls if c not in ours
               for k in c.keywords if k.arg == "package")
    assert "graphs.build(graph, given)" in ast.unparse(lg)


@pytest.mark.skipif(not _have_launch_ros(), reason="launch_ros not importable (wheel-based venv)")
@pytest.mark.parametrize("graph,args", CASES)
def test_launch_description_matches_runner(graph, args):
    """With launch_ros: execute the launch file's description and compare each Node with
    the runner's spec (executable, name, parameters, remappings)."""
    from launch import LaunchContext
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.launch_description_sources import get_launch_description_from_python_launch_file
    from launch.utilities import perform_substitutions
    from launch_ros.actions import Node
    from launch_ros.utilities import evaluate_parameters

    ld = get_launch_description_from_python_launch_file(str(REPO / "launch" / graphs.LAUNCH_FILES[graph]))
    declared = {a.name: a for a in ld.entities if isinstance(a, DeclareLaunchArgument)}
    assert set(declared) == set(graphs.ARGS[graph])
    ctx = LaunchContext()
    for name, a in declared.items():
        ctx.launch_configurations[name] = perform_substitutions(ctx, a.default_value)
    ctx.launch_configurations.update({k: graphs.launch_default(v) for k, v in args.items()})
    nodes = [n for e in ld.entities if isinstance(e, OpaqueFunction) for n in (e.execute(ctx) or [])]
    assert all(isinstance(n, Node) for n in nodes)
    specs = graphs.build(graph, args)
    assert [n.node_executable for n in nodes] == [s.executable for s in specs]
    for n, s in zip(nodes, specs):
        params: dict = {}
        for entry in evaluate_parameters(ctx, n._Node__parameters):
            params.update(P.load_params_file(entry, s.name) if not isinstance(entry, dict) else entry)
        assert P.typed_overrides(node_param_specs(s.name), params) == s.parameters()
        remaps = [(perform_substitutions(ctx, a), perform_substitutions(ctx, b)) for a, b in n._Node__remappings]
        assert remaps == list(s.remappings)


def test_sim_instruction_reaches_a_policy_that_starts_later(ros_context, spin_until):
    """sim_demo runs unattended: sim_node publishes its episode instruction latched
    (topics.INSTRUCTION_QOS), so a subscriber created after the publish still gets it."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from std_msgs.msg import String

    from posevla_ros.nodes.sim_node import SimNode
    from posevla_ros.ros_io.topics import INSTRUCTION_QOS, TOPIC_INSTRUCTION

    sim = SimNode(context=ros_context, start_thread=False, parameter_overrides=[
        Parameter("publish_instruction", value=True), Parameter("task", value="pick up the red cube"),
        Parameter("width", value=64), Parameter("height", value=64)])
    late = Node("late_policy", context=ros_context)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(sim)
    ex.add_node(late)
    try:
        got: list[str] = []
        late.create_subscription(String, TOPIC_INSTRUCTION, lambda m: got.append(m.data), INSTRUCTION_QOS)
        assert spin_until(ex, lambda: got == ["pick up the red cube"], 20.0), got
    finally:
        late.destroy_node()
        sim.destroy_node()
        ex.shutdown()


def test_describing_a_graph_imports_no_torch(tmp_path):
    """Launch files and the CLI describe graphs before any model loads: reading a checkpoint's
    head is config.json only (posevla_core.paths), so describing imports no torch. A flow-head
    checkpoint still switches the executor to chunk mode."""
    flow = tmp_path / "flow"
    flow.mkdir()
    (flow / "config.json").write_text('{"head": "flow", "architecture": "small"}')
    code = ("import sys\n"
            "from posevla_ros.launching import graphs\n"
            "modes = [s.parameters()['execution_mode'] for c in ('', sys.argv[1])\n"
            "         for s in graphs.build('policy', {'checkpoint': c}) if s.name == 'executor_node']\n"
            "print(modes, 'torch' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code, str(flow)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['replace', 'chunk'] False"


# ---------------------------------------------------------------- operator flags
def test_operator_flags_are_graph_arguments(tmp_path):
    """dry_run / deadman_* are launch arguments of every graph with an executor; they never
    weaken the robot config (a config's dry_run: true stays a dry run)."""
    for graph, extra in (("policy", {}), ("sim_demo", {}), ("evaluate", {"sim": True, "task": "pick"})):
        assert {"dry_run", "deadman_topic", "deadman_timeout_s"} <= set(graphs.ARGS[graph])
        ex = {s.name: s for s in graphs.build(graph, dict(extra, dry_run="true", deadman_topic="/op/deadman",
                                                      deadman_timeout_s="0.25"))}["executor_node"].params
        assert ex["dry_run"] is True and ex["deadman_topic"] == "/op/deadman" and ex["deadman_timeout_s"] == 0.25
        plain = {s.name: s for s in graphs.build(graph, extra)}["executor_node"].parameters()
        assert plain["dry_run"] is False and plain["deadman_topic"] == ""
    cfg = tmp_path / "careful.yaml"
    cfg.write_text(P.robot_config_path("sim_panda").read_text() + "dry_run: true\n")
    ex = {s.name: s for s in graphs.build("policy", {"robot": str(cfg), "dry_run": "false"})}["executor_node"]
    assert ex.parameters()["dry_run"] is True


@pytest.mark.parametrize("text,want", [("dry_run:=true", ("dry_run", True)), ("dry_run=true", ("dry_run", True)),
                                       ("deadman_topic:=/op/deadman", ("deadman_topic", "/op/deadman")),
                                       ("workspace.min:=[0.1, -0.5, 0.0]", ("workspace.min", [0.1, -0.5, 0.0]))])
def test_p_overrides_take_ros_syntax(text, want):
    from posevla_ros.param_schema import parse_override

    assert parse_override(text) == want


def test_posevla_run_policy_dry_run(tmp_path):
    """`posevla run policy -p dry_run:=true` starts the executor in dry run (then Ctrl-C)."""
    import signal

    log = tmp_path / "run.log"
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "posevla_ros.cli", "run", "policy", "-p", "dry_run:=true"],
                                cwd=tmp_path, stdout=f, stderr=subprocess.STDOUT,
                                env=dict(os.environ, PYTHONUNBUFFERED="1"))
        try:
            poll(lambda: proc.poll() is not None or "DRY RUN" in log.read_text(), 120, 0.5)
            assert "DRY RUN: no motion is sent" in log.read_text(), log.read_text()
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(30)
    assert "Traceback" not in log.read_text()
