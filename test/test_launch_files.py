"""Launch files. With launch_ros (a ROS install) they are loaded and their LaunchDescription
inspected; here (no launch_ros) a static check parses them: every Node executable must be
installed by CMakeLists.txt from bin/, every config file and included launch file must exist,
and the documented launch arguments must be declared."""
import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LAUNCH = REPO / "launch"
EXPECTED_ARGS = {
    "policy.launch.py": {"robot", "checkpoint", "camera_ns", "use_sim_time", "backend", "rviz",
                         "camera_pose_topic", "execution_mode"},
    "sim_demo.launch.py": {"robot", "checkpoint", "backend", "rviz"},
}
EXPECTED_EXECUTABLES = {
    "policy.launch.py": {"policy_node", "executor_node", "rviz2"},
    "sim_demo.launch.py": {"sim_node"},
}
EXTERNAL = {("rviz2", "rviz2")}


def _have_launch_ros() -> bool:
    try:
        from launch import LaunchDescription  # noqa: F401 - the repo's launch/ dir is a namespace pkg
        import launch_ros  # noqa: F401
    except ImportError:
        return False
    return True


def installed_executables() -> set[str]:
    text = (REPO / "CMakeLists.txt").read_text()
    block = re.search(r"install\(PROGRAMS(.*?)DESTINATION", text, re.S)
    listed = {Path(x).name for x in block.group(1).split()} if block else set()
    return {n for n in listed if (REPO / "bin" / n).is_file()}


def static_check(path: Path) -> tuple[list[str], dict]:
    """Problems found in a launch file without importing launch_ros, and what it declares."""
    tree = ast.parse(path.read_text(), str(path))
    problems, found = [], {"args": set(), "executables": set()}
    exes = installed_executables()
    if not any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body):
        problems.append("no generate_launch_description()")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Node":
            kw = {k.arg: k.value for k in node.keywords}
            pkg = kw["package"].value if isinstance(kw.get("package"), ast.Constant) else None
            exe = kw["executable"].value if isinstance(kw.get("executable"), ast.Constant) else None
            if exe is None:
                problems.append("Node without a literal executable")
                continue
            found["executables"].add(exe)
            if (pkg, exe) not in EXTERNAL and (pkg != "posevla_ros" or exe not in exes):
                problems.append(f"executable {pkg}/{exe} is not installed (bin/ + CMakeLists install(PROGRAMS))")
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            s = node.value.strip("/")
            if re.fullmatch(r"[\w/.-]+\.(yaml|rviz)", s) and not (REPO / s).is_file() and \
                    not (REPO / "config" / s).is_file():
                problems.append(f"missing file {s}")
            if s.endswith(".launch.py") and not (LAUNCH / Path(s).name).is_file():
                problems.append(f"missing launch file {s}")
    # launch arguments: DeclareLaunchArgument(name) or an ARGS dict feeding it
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "ARGS" for t in node.targets) \
                and isinstance(node.value, ast.Dict):
            found["args"].update(k.value for k in node.value.keys)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "DeclareLaunchArgument" \
                and node.args and isinstance(node.args[0], ast.Constant):
            found["args"].add(node.args[0].value)
    return problems, found


@pytest.mark.parametrize("name", sorted(EXPECTED_ARGS))
def test_static(name):
    problems, found = static_check(LAUNCH / name)
    assert not problems, problems
    assert EXPECTED_ARGS[name] <= found["args"]
    assert EXPECTED_EXECUTABLES[name] <= found["executables"]


def test_static_check_catches_errors(tmp_path):
    bad = tmp_path / "bad.launch.py"
    bad.write_text((LAUNCH / "policy.launch.py").read_text()
                   .replace('executable="executor_node"', 'executable="executer_node"')
                   .replace('"policy.yaml"', '"policy_params.yaml"'))
    problems, _ = static_check(bad)
    assert any("executer_node" in p for p in problems)
    assert any("policy_params.yaml" in p for p in problems)


def test_config_files_exist():
    for f in ("config/policy.yaml", "config/executor.yaml", "config/rviz/posevla.rviz"):
        assert (REPO / f).is_file(), f
    from posevla_ros import params as P

    assert set(P.load_params_file(REPO / "config/policy.yaml", "policy_node")) <= {s.name for s in P.POLICY_PARAMS}
    assert set(P.load_params_file(REPO / "config/executor.yaml", "executor_node")) <= \
        {s.name for s in P.EXECUTOR_PARAMS}


def test_camera_remappings():
    from posevla_ros import params as P

    want = [("/camera/color/image_raw", "/wrist_cam/color/image_raw"),
            ("/camera/color/camera_info", "/wrist_cam/color/camera_info"),
            ("/camera/aligned_depth_to_color/image_raw", "/wrist_cam/aligned_depth_to_color/image_raw")]
    assert P.camera_remappings("/wrist_cam/") == P.camera_remappings("wrist_cam") == want
    assert P.camera_remappings("/camera")[0] == ("/camera/color/image_raw", "/camera/color/image_raw")
    # the launch files that take camera_ns remap through this one helper
    for name in ("policy.launch.py", "collect_demos.launch.py", "evaluate.launch.py"):
        assert "P.camera_remappings(get(\"camera_ns\"))" in (LAUNCH / name).read_text(), name


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
    nodes = [e for e in ld.entities if isinstance(e, Node)]
    for e in ld.entities:
        if isinstance(e, OpaqueFunction):
            nodes += [n for n in (e.execute(ctx) or []) if isinstance(n, Node)]
    exes = {n.node_executable for n in nodes}
    assert EXPECTED_EXECUTABLES[name] <= exes  # sim_demo's policy/executor come via its include
