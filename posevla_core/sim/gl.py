"""Choose MuJoCo's OpenGL backend before ``mujoco`` is imported, so that rendering works
on a headless machine without any environment variable.

MuJoCo reads ``MUJOCO_GL`` once, at import. Unset, it uses GLFW, which on a machine with
no display prints a GLFW error and then aborts the whole process (exit 134) at the first
render. ``select_gl_backend()`` (run by ``import_mujoco()``, the only place this repo
imports mujoco, so modules that never render, like kinematics, pay nothing) keeps an
explicit ``MUJOCO_GL``, keeps GLFW when a display exists, and otherwise picks OSMesa when
libOSMesa is installed (requirements/apt.txt), else EGL when a probe can make a context.
The choice is written into ``os.environ``, so child processes (node executables) inherit
it without probing again. PyOpenGL needs the matching ``PYOPENGL_PLATFORM``, set with it.

Why OSMesa before EGL: the sim renders from more than one thread (sim_node's stepping
thread and its reset service), and an EGL context that is current in one thread cannot be
made current in another: with EGL, `posevla demo` here failed every reset with
EGL_BAD_ACCESS from eglMakeCurrent, while OSMesa renders the same pixels. The EGL probe
runs in a child process because a failing EGL driver can abort the process that tries it.
"""
from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys

_PROBE = "import mujoco; c = mujoco.GLContext(8, 8); c.make_current(); c.free()"


def _egl_works(timeout_s: float = 60.0) -> bool:
    if ctypes.util.find_library("EGL") is None:
        return False
    env = dict(os.environ, MUJOCO_GL="egl", PYOPENGL_PLATFORM="egl")
    try:
        r = subprocess.run([sys.executable, "-c", _PROBE], env=env, timeout=timeout_s,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def select_gl_backend() -> str:
    """The MuJoCo GL backend for this process (set in ``os.environ`` when it was unset):
    the given ``MUJOCO_GL``, else "glfw" with a display, else "osmesa", else "egl"."""
    chosen = os.environ.get("MUJOCO_GL", "").strip().lower()
    if chosen:
        if chosen in ("egl", "osmesa"):
            os.environ.setdefault("PYOPENGL_PLATFORM", chosen)
        return chosen
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return "glfw"
    chosen = "osmesa" if ctypes.util.find_library("OSMesa") or not _egl_works() else "egl"
    os.environ["MUJOCO_GL"] = chosen
    os.environ.setdefault("PYOPENGL_PLATFORM", chosen)
    return chosen


def import_mujoco():
    """``import mujoco`` after ``select_gl_backend()``: use this instead of a bare import."""
    select_gl_backend()
    # MuJoCo: optional (the sim extra); sim.gl picks its GL backend first
    import mujoco

    return mujoco
