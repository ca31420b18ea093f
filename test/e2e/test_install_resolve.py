"""The pip requirements of a real ROS 2 install resolve for the distro's Python, from PyPI.

A ROS 2 install runs the system Python: 3.10 on Humble (Ubuntu 22.04), 3.12 on Jazzy and
Kilted (Ubuntu 24.04). requirements/ros-humble.txt and requirements/ros-jazzy.txt must resolve
there from binary wheels alone (nothing built from source), so each is resolved here with pip's
own resolver for that Python and glibc: `pip install --dry-run --only-binary=:all:
--python-version X --platform manylinux_2_N_x86_64 ...`, against PyPI as a user sees it. This
machine's pip configuration (local wheel folders, a torch cap) is switched off for that:
PIP_CONFIG_FILE=/dev/null, no PIP_* variables, --isolated.

Nothing is downloaded but index pages and wheel metadata: pip reads PEP 658 metadata where the
index serves it and otherwise, with --use-feature=fast-deps, only the tail of each wheel through
HTTP range requests (torch alone is a 530 MB wheel). Skipped only when PyPI cannot be reached.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from test.helpers.paths import REPO

import pytest

INDEX = "https://pypi.org/simple"

# requirements file -> (Python version, newest glibc of that Ubuntu release)
TARGETS = {
    "ros-humble.txt": ("3.10", 35),   # Ubuntu 22.04: CPython 3.10, glibc 2.35
    "ros-jazzy.txt": ("3.12", 39),    # Ubuntu 24.04 (Jazzy, Kilted): CPython 3.12, glibc 2.39
}


@pytest.fixture(scope="module")
def pypi():
    try:
        with urllib.request.urlopen(f"{INDEX}/pip/", timeout=15) as r:
            r.read(1)
    except OSError as e:
        pytest.skip(f"PyPI is not reachable from here ({e}); cannot check that the ROS requirements resolve")
    return INDEX


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[_canon(name)] = version.strip()
    return pins


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _resolve(index: str, tmp_path: Path, python: str, glibc: int, *req_files: str) -> dict[str, str]:
    """{distribution: version} that pip would install for CPython ``python`` on manylinux x86_64
    with glibc <= 2.``glibc``, wheels only; the test fails with pip's own message otherwise."""
    platforms = [f"manylinux_2_{m}_x86_64" for m in range(glibc, 16, -1)] + \
        ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
    report = tmp_path / f"report-{python}.json"
    cmd = [sys.executable, "-m", "pip", "install", "--isolated", "--dry-run", "--ignore-installed",
           "--disable-pip-version-check", "--no-input", "--index-url", index,
           "--cache-dir", str(tmp_path / "pip-cache"), "--use-feature=fast-deps",
           "--only-binary=:all:", "--python-version", python, "--implementation", "cp",
           "--abi", "cp" + python.replace(".", ""), "--report", str(report)]
    for p in platforms:
        cmd += ["--platform", p]
    for f in req_files:
        cmd += ["-r", str(REPO / "requirements" / f)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull        # no /etc/pip.conf, no local wheel folders or caps
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(req_files)} does not resolve for CPython {python}:\n" \
                                 f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    installs = json.loads(report.read_text())["install"]
    for item in installs:   # wheels only, for this Python and platform
        url = item["download_info"]["url"]
        assert url.endswith(".whl"), url
    return {_canon(i["metadata"]["name"]): i["metadata"]["version"] for i in installs}


@pytest.mark.parametrize("req", sorted(TARGETS))
def test_ros_requirements_resolve_from_wheels(pypi, tmp_path, req):
    python, glibc = TARGETS[req]
    resolved = _resolve(pypi, tmp_path, python, glibc, req)
    pins = _pins(REPO / "requirements" / req)
    wrong = {name: (version, resolved.get(name)) for name, version in pins.items() if resolved.get(name) != version}
    assert not wrong, f"{req}: pinned vs resolved {wrong}"
    assert "pybullet" not in resolved, f"{req} pulls in pybullet; a real-robot install must not need it"
    assert resolved["numpy"].startswith("1."), f"{req} resolves numpy {resolved['numpy']}; ROS binaries need 1.x"


def test_sim_extra_resolves_on_humble(pypi, tmp_path):
    """The sim's pybullet (data files only) has a CPython 3.10 wheel; on 3.12 it has none."""
    resolved = _resolve(pypi, tmp_path, "3.10", 35, "ros-sim.txt")
    assert resolved == _pins(REPO / "requirements" / "ros-sim.txt")


def test_docs_name_existing_requirement_files():
    docs = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "package.xml"]
    named = {m for d in docs for m in re.findall(r"requirements/([\w.<>-]+\.txt)", d.read_text())}
    named = {n for n in named if "<" not in n}          # requirements/ros-<distro>.txt is a pattern
    missing = sorted(n for n in named if not (REPO / "requirements" / n).is_file())
    assert not missing, f"docs name requirement files that do not exist: {missing}"
    assert {"ros-humble.txt", "ros-jazzy.txt"} <= named
