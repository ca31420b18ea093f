"""Static checks of the launch files, without launch_ros: ``installed_executables`` (the nodes
CMakeLists.txt installs, each with a main()), ``spec_problems`` (executables not installed,
parameter files missing) and ``static_check`` (a launch file's problems and what it declares).

Used by test/unit/posevla_ros/launching/test_launch_files.py, test/ros/test_graphs.py and
test/e2e/test_collect_eval.py."""
import ast
import re
from pathlib import Path
from test.helpers.paths import REPO

from posevla_ros.launching import graphs as G

def installed_executables() -> set[str]:
    """The nodes ``ros2 run`` finds: CMakeLists.txt installs a wrapper into lib/posevla_ros for
    every posevla_ros/nodes/*_node.py (posevla_ros.nodes.NODE_NAMES), each module with a main()."""
    from posevla_ros.nodes import NODE_NAMES

    text = (REPO / "CMakeLists.txt").read_text()
    if not re.search(r"file\(GLOB \w+ [^)]*posevla_ros/nodes/\*_node\.py", text) or \
            not re.search(r"install\(PROGRAMS [^)]*DESTINATION lib/\$\{PROJECT_NAME\}", text):
        return set()
    mains = {n for n in NODE_NAMES if any(isinstance(d, ast.FunctionDef) and d.name == "main" for d in
                                          ast.parse((REPO / "posevla_ros" / "nodes" / f"{n}.py").read_text()).body)}
    return mains


def spec_problems(specs) -> list[str]:
    """Executables not installed, parameter files missing."""
    exes, problems = installed_executables(), []
    for s in specs:
        if s.executable not in exes:
            problems.append(f"executable posevla_ros/{s.executable} is not installed (no posevla_ros/nodes/"
                            f"{s.executable}.py with a main())")
        problems += [f"missing file config/{f}" for f, p in zip(s.param_files, s.file_paths()) if not p.is_file()]
    return problems


def static_check(path: Path, graph_args: dict | None = None) -> tuple[list[str], dict]:
    """Problems found in a launch file without importing launch_ros, and what it declares:
    its graph's arguments and the executables of every sim / real variant of the graph."""
    tree = ast.parse(path.read_text(), str(path))
    problems, found = [], {"args": set(), "executables": set()}
    if not any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body):
        problems.append("no generate_launch_description()")
    graphs = [c.args[0].value for c in ast.walk(tree) if isinstance(c, ast.Call)
              and getattr(c.func, "id", None) == "describe" and c.args and isinstance(c.args[0], ast.Constant)]
    if len(graphs) != 1 or graphs[0] not in G.GRAPHS:
        return problems + [f"not one describe(<graph>) call of a known graph: {graphs}"], found
    graph = graphs[0]
    found["args"] = set(G.ARGS[graph])
    variants = [{}] if "sim" not in G.ARGS[graph] else [{"sim": True}, {"sim": False}]
    for v in variants:
        a = dict({"task": "pick up the red cube"} if "task" in G.ARGS[graph] else {}, **v, **(graph_args or {}))
        specs = G.build(graph, a)
        problems += spec_problems(specs)
        found["executables"] |= {s.executable for s in specs}
    if "rviz" in G.ARGS[graph]:
        found["executables"].add("rviz2")
    return problems, found
