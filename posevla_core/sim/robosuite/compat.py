"""``import_robosuite()``: import robosuite 1.5.2 so that it renders headless with OUR GL
choice and runs on the venv's MuJoCo 4.0.0 (robosuite 1.5.2 was written for MuJoCo 3.3).

Three things go wrong with a bare ``import robosuite`` here, each handled below:

1. GL backend: robosuite's binding_utils sets ``MUJOCO_GL=egl`` at import unless it is
   ``osmesa`` or ``glx`` (even over ``glfw``). We pick the backend first (posevla_core.sim.gl,
   which also imports mujoco with it) and restore the environment after the import, so
   child processes inherit our choice, not robosuite's. We never use robosuite's own
   renderer (``has_offscreen_renderer=False``); frames come from ``mujoco.Renderer``.
2. ``MjModel.get_joint_qpos_addr`` / ``get_joint_qvel_addr`` assert
   ``jnt_type in (mjtJoint.mjJNT_HINGE, mjtJoint.mjJNT_SLIDE)``: with MuJoCo 4.0.0 the enum's
   ``==`` against a numpy int32 is False, so the assert fails for EVERY hinge / slide joint
   (``AssertionError`` in ``robot.setup_references`` while building any env). Replaced by
   the same lookup on ``int(jnt_type)``.
3. ``Controller.update`` calls ``mujoco.mj_fullM(m, dst, data.qM)``: MuJoCo 4.0.0 has no
   ``MjData.qM`` and its ``mj_fullM`` is ``(m, d, dst)``
   (``AttributeError: 'MjData' object has no attribute 'qM'``). Replaced by the same update
   with the new call.
Nothing else of robosuite is changed; the patches are applied once, idempotently.

Its log says, at every import, that there is no private macro file and that robosuite_models
and mink (robots and whole-body IK we do not use) are missing, and at every env, which
controller file it loaded: those records are dropped; every other warning and error stays.
"""
from __future__ import annotations

import logging
import os

import numpy as np

from posevla_core.sim.gl import import_mujoco

_PATCHED = {}
_KNOWN_NOISE = ("private macro file", "setup_macros.py", "robosuite_models", "mink-based whole-body IK",
                "Loading controller configuration")


def _not_known_noise(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR or not any(k in record.getMessage() for k in _KNOWN_NOISE)


def _joint_addr(model, name: str, vel: bool):
    """robosuite's address lookup: an int for a 1-dof joint, (start, end) for free / ball."""
    mujoco = _PATCHED["mujoco"]
    j = model.joint_name2id(name)
    kind = int(model.jnt_type[j])
    start = int((model.jnt_dofadr if vel else model.jnt_qposadr)[j])
    width = {int(mujoco.mjtJoint.mjJNT_FREE): 6 if vel else 7,
             int(mujoco.mjtJoint.mjJNT_BALL): 3 if vel else 4}.get(kind, 1)
    return start if width == 1 else (start, start + width)


def _controller_update(self, force: bool = False) -> None:
    """robosuite 1.5.2 ``Controller.update`` with MuJoCo 4's ``mj_fullM(m, d, dst)``."""
    if not (self.new_update or force):
        return
    if force or not self.lite_physics:
        self.sim.forward()
    if self.ref_name is not None:
        self.update_reference_data()
    self.joint_pos = np.array(self.sim.data.qpos[self.qpos_index])
    self.joint_vel = np.array(self.sim.data.qvel[self.qvel_index])
    nv = self.sim.model.nv
    full = np.zeros((nv, nv))
    _PATCHED["mujoco"].mj_fullM(self.sim.model._model, self.sim.data._data, full)
    self.mass_matrix = full[np.ix_(self.qvel_index, self.qvel_index)]
    self.new_update = False


def import_robosuite():
    """``import robosuite`` (see the module docstring); returns the module."""
    if "robosuite" in _PATCHED:
        return _PATCHED["robosuite"]

    mujoco = import_mujoco()
    saved = {k: os.environ.get(k) for k in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
    logging.getLogger("robosuite_logs").addFilter(_not_known_noise)
    try:
        # robosuite: optional, only the robosuite tasks need it
        import robosuite
        from robosuite.controllers.parts import controller
        from robosuite.utils import binding_utils
    except ImportError as e:
        raise ImportError(f"robosuite is not installed ({e}); install it as the Makefile does: "
                          "pip install --no-deps -r requirements/robosuite.txt") from e
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    _PATCHED["mujoco"] = mujoco
    binding_utils.MjModel.get_joint_qpos_addr = lambda self, name: _joint_addr(self, name, False)
    binding_utils.MjModel.get_joint_qvel_addr = lambda self, name: _joint_addr(self, name, True)
    if not hasattr(mujoco.MjData, "qM"):
        controller.Controller.update = _controller_update
    _PATCHED["robosuite"] = robosuite
    return robosuite
