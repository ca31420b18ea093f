"""Launch files. Each is one ``describe("<graph>")`` call (posevla_ros.launching.launch_description) over the
graph description in posevla_ros.launching.graphs; test_graphs.py compares that with the runner. Here
a static check: the launch file names a known graph, every executable of the graph is a
node that CMakeLists.txt installs (one per posevla_ros/nodes/*_node.py), every parameter file exists, and the documented
launch arguments are declared. With launch_ros (a ROS install) the LaunchDescription is
loaded and its nodes inspected."""
from test.helpers.launch_files import installed_executables, spec_problems, static_check
from test.helpers.paths import REPO

import pytest

from posevla_ros.launching import graphs as G

LAUNCH = REPO / "launch"
EXPECTED_ARGS = {
    "policy.launch.py": {"robot", "checkpoint", "camera_ns", "use_sim_time", "backend", "rviz",
                         "camera_pose_topic", "execution_mode", "use_depth", "dry_run", "deadman_topic",
                         "deadman_timeout_s"},
    "sim_demo.launch.py": {"robot", "checkpoint", "backend", "rviz", "task", "dry_run"},
}
EXPECTED_EXECUTABLES = {
    "policy.launch.py": {"policy_node", "executor_node", "rviz2"},
    "sim_demo.launch.py": {"sim_node", "policy_node", "executor_node", "rviz2"},
}


def _have_launch_ros() -> bool:
    try:
        import launch_ros  # noqa: F401
        from launch import LaunchDescription  # noqa: F401 - the repo's launch/ dir is a namespace pkg
    except ImportError:
        return False
    return True


def test_every_node_is_installed_and_declared():
    """One node list: the node files; setup.py's console scripts and the parameter tables follow it."""
    from posevla_ros import params
    from posevla_ros.nodes import NODE_NAMES

    assert set(NODE_NAMES) == {"policy_node", "executor_node", "sim_node", "recorder_node", "evaluator_node",
                               "teleop_node"}
    assert installed_executables() == set(NODE_NAMES)
    assert set(params.NODE_PARAMS) == set(NODE_NAMES)
    assert not (REPO / "bin").exists()


@pytest.mark.parametrize("name", sorted(EXPECTED_ARGS))
def test_static(name):
    problems, found = static_check(LAUNCH / name)
    assert not problems, problems
    assert EXPECTED_ARGS[name] <= found["args"]
    assert EXPECTED_EXECUTABLES[name] <= found["executables"]


def test_static_check_catches_errors(tmp_path):
    import dataclasses

    good = G.build("policy")
    bad = [dataclasses.replace(good[0], executable="executer_node"),
           dataclasses.replace(good[1], param_files=("policy_params.yaml",))]
    problems = spec_problems(bad)
    assert any("executer_node" in p for p in problems)
    assert any("policy_params.yaml" in p for p in problems)
    wrong = tmp_path / "bad.launch.py"
    wrong.write_text((LAUNCH / "policy.launch.py").read_text().replace('describe("policy")', 'describe("polcy")'))
    problems, _ = static_check(wrong)
    assert any("polcy" in p for p in problems)


def test_config_files_exist():
    for f in ("config/policy.yaml", "config/executor.yaml", "config/rviz/posevla.rviz"):
        assert (REPO / f).is_file(), f
    from posevla_ros import params

    assert set(params.load_params_file(REPO / "config/policy.yaml", "policy_node")) <= {s.name for s in params.POLICY_PARAMS}
    assert set(params.load_params_file(REPO / "config/executor.yaml", "executor_node")) <= \
        {s.name for s in params.EXECUTOR_PARAMS}


def test_camera_remappings():
    from posevla_ros import params

    want = [("/camera/color/image_raw", "/wrist_cam/color/image_raw"),
            ("/camera/color/camera_info", "/wrist_cam/color/camera_info"),
            ("/camera/aligned_depth_to_color/image_raw", "/wrist_cam/aligned_depth_to_color/image_raw")]
    assert params.camera_remappings("/wrist_cam/") == params.camera_remappings("wrist_cam") == want
    assert params.camera_remappings("/camera")[0] == ("/camera/color/image_raw", "/camera/color/image_raw")
    # the graphs that take camera_ns remap every camera subscriber through this one helper
    for graph, args in (("policy", {}), ("evaluate", {"sim": False, "task": "x"}),
                        ("collect", {"sim": False, "task": "x"})):
        specs = {s.name: s for s in G.build(graph, dict(args, camera_ns="/wrist_cam"))}
        for name in ("policy_node", "recorder_node"):
            if name in specs:
                assert list(specs[name].remappings) == want, (graph, name)
        if "evaluator_node" in specs:
            assert list(specs["evaluator_node"].remappings) == want[:1]


@pytest.mark.skipif(not _have_launch_ros(), reason="launch_ros not importable (wheel-based venv)")
@pytest.mark.parametrize("name", sorted(EXPECTED_ARGS))
def test_launch_description(name):
    from launch import LaunchContext
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.launch_description_sources import get_launch_description_from_python_launch_file
    from launch_ros.actions import Node

    ld = get_launch_description_from_python_launch_file(str(LAUNCH / name))
    args = {a.name: a for a in ld.entities if isinstance(a, DeclareLaunchArgument)}
    assert EXPECTED_ARGS[name] <= set(args)
    ctx = LaunchContext()
    for a in args.values():
        ctx.launch_configurations[a.name] = a.default_value[0].perform(ctx) if a.default_value else ""
    ctx.launch_configurations["rviz"] = "true"          # rviz2 joins the graph's nodes
    nodes = [e for e in ld.entities if isinstance(e, Node)]
    for e in ld.entities:
        if isinstance(e, OpaqueFunction):
            nodes += [n for n in (e.execute(ctx) or []) if isinstance(n, Node)]
    exes = {n.node_executable for n in nodes}
    assert EXPECTED_EXECUTABLES[name] <= exes
