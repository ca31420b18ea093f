"""The shape of the house, checked on the source text (ast, no imports):

- no import circle among posevla_core / posevla_ros modules, counting imports inside
  functions too (a circle hidden in a function is still a circle);
- an import inside a function is there for an optional or heavy dependency and says which,
  in a comment on its line or right above its run of imports;
- a module over ``MAX_LINES`` says why it is one module (a line starting "Why one module:"
  in its docstring).
"""
from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("posevla_core", "posevla_ros")
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for f in sorted((REPO / pkg).rglob("*.py")):
            parts = list(f.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            mods[".".join(parts)] = f
    return mods


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The project module that ``name`` (a module, or module.attribute) lives in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield node, [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node, [node.module] + [f"{node.module}.{a.name}" for a in node.names]


def _function_imports(tree: ast.AST) -> list[ast.stmt]:
    out = []
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out += [n for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))]
    return out


def test_modules_found():
    assert "posevla_core.policies.base" in MODULES and "posevla_ros.nodes.policy_node" in MODULES


def test_no_import_circles():
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for mod, path in MODULES.items():
        for _, names in _imports(ast.parse(path.read_text())):
            for name in names:
                target = _resolve(name) if name.split(".")[0] in PACKAGES else None
                if target and target != mod and not mod.startswith(target + "."):   # a package's own __init__
                    graph[mod].add(target)
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as e:
        pytest.fail("import circle: " + " -> ".join(e.args[1]))


def _commented(lines: list[str], lineno: int) -> bool:
    """A comment on the import's line, or on the line above the run of imports it belongs to."""
    i = lineno - 1
    if "#" in lines[i]:
        return True
    while i > 0 and lines[i - 1].strip().startswith(("import ", "from ")):
        i -= 1
    return i > 0 and lines[i - 1].strip().startswith("#")


def test_function_level_imports_say_why():
    bare = []
    for mod, path in MODULES.items():
        text = path.read_text()
        lines = text.split("\n")
        for node in _function_imports(ast.parse(text)):
            if not _commented(lines, node.lineno):
                bare.append(f"{path.relative_to(REPO)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert not bare, "imports inside functions without a comment saying which dependency they defer:\n" \
        + "\n".join(bare)


def test_long_modules_say_why():
    long = []
    for mod, path in MODULES.items():
        n = len(path.read_text().splitlines())
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if n > MAX_LINES and "Why one module:" not in doc:
            long.append(f"{path.relative_to(REPO)} ({n} lines)")
    assert not long, f"modules over {MAX_LINES} lines without 'Why one module:' in their docstring: {long}"
