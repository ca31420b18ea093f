"""Robot kinematics on pinocchio: forward kinematics and damped least-squares IK within
joint limits, for the arm joints ``joint_names`` (all other joints locked at 0).

    kin = RobotKinematics(urdf_path_or_uri, ee_link, joint_names)
    T = kin.fk(q)                                   # 4x4, base (URDF root) frame
    q, ok, info = kin.ik(T_target, q_seed, pos_tol=1e-3, rot_tol=1e-2)
    kin.lower, kin.upper, kin.velocity_limits

``urdf_path`` may be ``posevla://panda`` (see posevla_core.sim.mujoco.assets). A URDF that arrives as
text (ROS publishes it on /robot_description) is built with ``RobotKinematics.from_xml``:
kinematics need no meshes, so ``package://`` mesh paths in it are never opened.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from posevla_core.sim.mujoco.assets import resolve_robot_description


def _resolve(urdf_path) -> Path:
    return resolve_robot_description(urdf_path)


class RobotKinematics:
    def __init__(self, urdf_path, ee_link: str, joint_names: list[str], _xml: str | None = None) -> None:
        # pinocchio: optional (the sim extra), heavy; paths and configs are read without it
        import pinocchio as pin

        self._pin = pin
        if _xml is None:
            self.urdf_path = _resolve(urdf_path)
            full = pin.buildModelFromUrdf(str(self.urdf_path))
        else:
            self.urdf_path = urdf_path          # where the text came from (a topic name), for messages
            full = pin.buildModelFromXML(_xml)
        names = [full.names[i] for i in range(1, full.njoints)]
        missing = [j for j in joint_names if j not in names]
        if missing:
            raise ValueError(f"joints {missing} not in {self.urdf_path} (has {names})")
        lock = [full.getJointId(n) for n in names if n not in joint_names]
        model = pin.buildReducedModel(full, lock, pin.neutral(full)) if lock else full
        if not model.existFrame(ee_link):
            raise ValueError(f"ee_link {ee_link!r} not in {self.urdf_path}")
        red_names = [model.names[i] for i in range(1, model.njoints)]
        if any(model.joints[i].nq != 1 for i in range(1, model.njoints)):
            raise ValueError("only 1-DoF joints are supported")
        self._perm = np.array([red_names.index(j) for j in joint_names])  # user order -> model idx
        self.model = model
        self.data = model.createData()
        self.ee_link = ee_link
        self.joint_names = list(joint_names)
        self.frame_id = model.getFrameId(ee_link)
        self.dof = len(joint_names)
        self.lower = np.asarray(model.lowerPositionLimit)[self._perm].copy()
        self.upper = np.asarray(model.upperPositionLimit)[self._perm].copy()
        self.velocity_limits = np.asarray(model.velocityLimit)[self._perm].copy()

    @classmethod
    def from_xml(cls, urdf_xml: str, ee_link: str, joint_names: list[str],
                 source: str = "robot_description") -> "RobotKinematics":
        """Kinematics from URDF text (``source`` names where it came from in error messages)."""
        return cls(source, ee_link, joint_names, _xml=urdf_xml)

    # -- conversions between the caller's joint order and pinocchio's
    def _to_model(self, q) -> np.ndarray:
        qm = np.zeros(self.model.nq)
        qm[self._perm] = np.asarray(q, dtype=float).reshape(self.dof)
        return qm

    def _from_model(self, qm) -> np.ndarray:
        return np.asarray(qm, dtype=float)[self._perm].copy()

    def fk(self, q) -> np.ndarray:
        """4x4 pose of ``ee_link`` in the base (URDF root) frame."""
        pin = self._pin
        pin.framesForwardKinematics(self.model, self.data, self._to_model(q))
        return np.asarray(self.data.oMf[self.frame_id].homogeneous).copy()

    def fk_link(self, q, link: str) -> np.ndarray:
        pin = self._pin
        pin.framesForwardKinematics(self.model, self.data, self._to_model(q))
        return np.asarray(self.data.oMf[self.model.getFrameId(link)].homogeneous).copy()

    def _error(self, T_target: np.ndarray, T: np.ndarray) -> np.ndarray:
        """6-vector [dp; dw] in base axes (target - current)."""
        dp = T_target[:3, 3] - T[:3, 3]
        dw = self._pin.log3(T_target[:3, :3] @ T[:3, :3].T)
        return np.concatenate([dp, dw])

    def _solve(self, T_target, qm, pos_tol, rot_tol, max_iters):
        pin, model, data = self._pin, self.model, self.data
        lo, hi = model.lowerPositionLimit, model.upperPositionLimit
        it = 0
        for it in range(max_iters):
            pin.framesForwardKinematics(model, data, qm)
            e = self._error(T_target, data.oMf[self.frame_id].homogeneous)
            pe, re_ = np.linalg.norm(e[:3]), np.linalg.norm(e[3:])
            if pe < pos_tol * 0.05 and re_ < rot_tol * 0.05:
                break
            J = pin.computeFrameJacobian(model, data, qm, self.frame_id, pin.LOCAL_WORLD_ALIGNED)
            lam = 1e-4 + 0.05 * min(1.0, float(np.linalg.norm(e)))
            dq = J.T @ np.linalg.solve(J @ J.T + lam**2 * np.eye(6), e)
            n = np.linalg.norm(dq)
            if n > 0.5:
                dq *= 0.5 / n
            qm = np.clip(qm + dq, lo, hi)
        pin.framesForwardKinematics(model, data, qm)
        e = self._error(T_target, data.oMf[self.frame_id].homogeneous)
        return qm, float(np.linalg.norm(e[:3])), float(np.linalg.norm(e[3:])), it + 1

    def ik(self, T_target, q_seed, pos_tol: float = 1e-3, rot_tol: float = 1e-2,
           max_iters: int = 200, restarts: int = 8, seed: int = 0):
        """Damped least-squares IK from ``q_seed`` (then random restarts within limits).
        Returns (q, ok, info); ok means position error <= pos_tol (m) and rotation error
        <= rot_tol (rad); q always lies within [lower, upper]. Of several solutions found,
        the first (closest start: the seed) wins."""
        T_target = np.asarray(T_target, dtype=float)
        if T_target.shape != (4, 4) or not np.all(np.isfinite(T_target)):
            return np.asarray(q_seed, dtype=float), False, {"reason": "non-finite target"}
        lo, hi = self.model.lowerPositionLimit, self.model.upperPositionLimit
        q0 = np.clip(self._to_model(q_seed), lo, hi)
        rng = np.random.default_rng(seed)
        best = None
        for r in range(restarts + 1):
            start = q0 if r == 0 else (q0 + rng.normal(0, 0.6, q0.shape) if r % 2 else rng.uniform(lo, hi))
            qm, pe, re_, iters = self._solve(T_target, np.clip(start, lo, hi), pos_tol, rot_tol, max_iters)
            score = pe + 0.1 * re_
            if best is None or score < best[0]:
                best = (score, qm, pe, re_, iters, r)
            if pe <= pos_tol and re_ <= rot_tol:
                break
        _, qm, pe, re_, iters, r = best
        ok = bool(pe <= pos_tol and re_ <= rot_tol)
        info = {"pos_err": pe, "rot_err": re_, "iters": iters, "restarts": r}
        return self._from_model(qm), ok, info
