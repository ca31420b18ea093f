"""Files found from anywhere, and headless by default.

- ``params.share_dir()`` finds config/, launch/ and the shipped checkpoint for a checkout
  and for what ``pip install . --target DIR`` lays down (the share files next to the
  package), run from another directory.
- The CLI run from another directory in a fresh environment (``env -i``: no MUJOCO_GL, no
  DISPLAY, no PYTHONPATH) finds its files, and relative ``--out`` paths land in that
  directory.
- ``posevla_core.sim.gl``: with no MUJOCO_GL and no display, rendering a sim frame works
  (EGL, else OSMesa) instead of the GLFW abort; an explicit MUJOCO_GL is kept.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from test.helpers.paths import REPO

import pytest

VENV_BIN = Path(sys.executable).parent


def bare_env(**extra) -> dict:
    """What a fresh login shell has: no MUJOCO_GL, DISPLAY, PYTHONPATH or ROS variables."""
    env = {"HOME": os.environ.get("HOME", "/root"), "PATH": f"{VENV_BIN}:/usr/bin:/bin",
           "ROS_DOMAIN_ID": os.environ["ROS_DOMAIN_ID"], "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    env.update(extra)
    return env


def run(args, cwd, env, timeout=300):
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_share_dir_of_a_pip_target_install(tmp_path):
    """`pip install --no-deps . --target DIR`: share/posevla_ros lands in DIR and is found."""
    import shutil

    src, target = tmp_path / "src", tmp_path / "site"   # pip builds in the source tree: use a copy
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".*", "build", "runs", "data", "bench_results",
                                                             "*.egg-info", "__pycache__"))
    r = run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(src),
             "--target", str(target)], cwd=tmp_path, env=dict(os.environ), timeout=600)
    assert r.returncode == 0, r.stderr
    assert (target / "share/posevla_ros/config/robots/xarm6.yaml").is_file()
    code = ("from posevla_ros import params as P; from posevla_core.paths import default_checkpoint; import json; print(json.dumps([P.__file__, str(P.share_dir()), "
            "str(default_checkpoint()), P.robot_executor_params('xarm6')['ee_link']]))")
    r = run([sys.executable, "-c", code], cwd=tmp_path, env=bare_env(PYTHONPATH=str(target)))
    assert r.returncode == 0, r.stderr
    module, share, ckpt, ee = json.loads(r.stdout.strip().splitlines()[-1])
    assert module.startswith(str(target)) and share == str(target / "share/posevla_ros") and ee == "link6"
    assert (Path(ckpt) / "model.safetensors").is_file()


def _cli():
    """The console script where `make setup` installed it, else `python -m` of the checkout."""
    script = VENV_BIN / "posevla"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "posevla_ros.cli"]


def test_cli_help_from_anywhere(tmp_path):
    env = bare_env() if (VENV_BIN / "posevla").is_file() else bare_env(PYTHONPATH=str(REPO))
    for cmd in (["--help"], ["run", "--help"], ["collect", "--help"], ["evaluate", "--help"], ["train", "--help"],
                ["eval-offline", "--help"], ["demo", "--help"]):
        r = run(_cli() + cmd, cwd=tmp_path, env=env, timeout=120)
        assert r.returncode == 0 and "usage: posevla" in r.stdout, (cmd, r.stderr)


@pytest.mark.slow
def test_demo_from_another_directory_headless(tmp_path):
    """`posevla demo --episodes 1 --out x` in an empty directory, env -i: it renders (no
    MUJOCO_GL given), finds the shipped checkpoint, and writes x/ in that directory."""
    env = bare_env() if (VENV_BIN / "posevla").is_file() else bare_env(PYTHONPATH=str(REPO))
    r = run(_cli() + ["demo", "--episodes", "1", "--out", "x", "--timeout", "5"], cwd=tmp_path, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = json.loads((tmp_path / "x" / "summary.json").read_text())
    assert summary["episodes"] == 1


RENDER = ("from posevla_core.sim.mujoco.env import SimEnv; import os, numpy as np\n"
          "env = SimEnv(width=64, height=48); env.reset(seed=0)\n"
          "rgb, depth, K = env.render()\n"
          "print(os.environ['MUJOCO_GL'], os.environ['PYOPENGL_PLATFORM'], rgb.shape, float(rgb.std()) > 1.0, "
          "bool(np.isfinite(depth).any()))\n"
          "env.close()\n")


def test_headless_render_without_mujoco_gl(tmp_path):
    r = run([sys.executable, "-c", RENDER], cwd=tmp_path, env=bare_env(PYTHONPATH=str(REPO)))
    assert r.returncode == 0, r.stderr[-3000:]
    backend, platform, rest = r.stdout.strip().splitlines()[-1].split(" ", 2)
    assert backend in ("egl", "osmesa") and platform == backend
    assert rest == "(48, 64, 3) True True", r.stdout


def test_explicit_mujoco_gl_is_kept(monkeypatch):
    from posevla_core.sim import gl

    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    assert gl.select_gl_backend() == "osmesa" and os.environ["PYOPENGL_PLATFORM"] == "osmesa"
    monkeypatch.delenv("MUJOCO_GL")
    monkeypatch.setenv("DISPLAY", ":0")
    assert gl.select_gl_backend() == "glfw" and "MUJOCO_GL" not in os.environ
