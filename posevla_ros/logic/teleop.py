"""Teleoperation logic without ROS: keyboard / joystick / leader-arm input -> an
end-effector target in the robot base frame (+ gripper), and the raw terminal reader.

The teleop node turns every target into motion through the SAME path as the policy:
``posevla_ros.logic.joint_path.plan_joint_path`` (IK, joint limits, joint jumps, FK match, timing)
after the workspace and finite checks of ``posevla_ros.logic.safety``, and sends the plan with
the executor's backend (JointTrajectory topic / FollowJointTrajectory / MoveIt).

Conventions: deltas are in the BASE frame (x forward, y left, z up, REP-103); rotations
are rotation vectors (rad) applied about the end-effector position in the base frame;
gripper 1.0 = open, 0.0 = closed.
"""
from __future__ import annotations

import os
import select
import sys
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

# ------------------------------------------------------------------ commands

EVENTS = ("start", "stop", "discard", "quit", "gripper", "success", "failure")


@dataclass
class TeleopCommand:
    """One input step. ``dpos`` [m] and ``drot`` [rad, rotation vector] in the base frame;
    ``events`` from EVENTS ('gripper' toggles the gripper)."""

    dpos: np.ndarray = field(default_factory=lambda: np.zeros(3))
    drot: np.ndarray = field(default_factory=lambda: np.zeros(3))
    events: list[str] = field(default_factory=list)

    @property
    def moves(self) -> bool:
        return bool(np.any(self.dpos != 0) or np.any(self.drot != 0))


# key -> (axis index 0..5 over [x, y, z, rx, ry, rz], sign) or an event
KEY_BINDINGS: dict[str, tuple[int, float] | str] = {
    "w": (0, +1.0), "s": (0, -1.0),      # base x forward / back
    "a": (1, +1.0), "d": (1, -1.0),      # base y left / right
    "r": (2, +1.0), "f": (2, -1.0),      # base z up / down
    "i": (3, +1.0), "k": (3, -1.0),      # roll about base x
    "j": (4, +1.0), "l": (4, -1.0),      # pitch about base y
    "u": (5, +1.0), "o": (5, -1.0),      # yaw about base z
    " ": "gripper",
    "n": "start", "\r": "start", "\n": "start",
    "e": "stop",
    "x": "discard",
    "y": "success", "b": "failure",
    "q": "quit", "\x03": "quit", "\x1b": "quit",
}

KEY_HELP = ("keys: w/s x+-, a/d y+-, r/f z+-, i/k roll, j/l pitch, u/o yaw, space gripper, "
            "n/Enter start episode, e stop+save, x discard, q quit")


class KeyboardMapper:
    """One key press = one step of ``linear_step`` m or ``angular_step`` rad."""

    def __init__(self, linear_step: float = 0.01, angular_step: float = 0.05,
                 bindings: dict | None = None) -> None:
        self.linear_step, self.angular_step = float(linear_step), float(angular_step)
        self.bindings = dict(KEY_BINDINGS if bindings is None else bindings)

    def map(self, key: str) -> TeleopCommand:
        cmd = TeleopCommand()
        b = self.bindings.get(key.lower() if len(key) == 1 and key.isalpha() else key)
        if b is None:
            return cmd
        if isinstance(b, str):
            cmd.events.append(b)
            return cmd
        axis, sign = b
        if axis < 3:
            cmd.dpos[axis] = sign * self.linear_step
        else:
            cmd.drot[axis - 3] = sign * self.angular_step
        return cmd


@dataclass
class JoyConfig:
    """sensor_msgs/Joy -> velocity command. ``axes[i]`` is the Joy axis index driving
    [x, y, z, roll, pitch, yaw] (-1 = unused), ``signs[i]`` its sign; ``buttons`` maps
    an event name to a Joy button index (-1 = unused). Default: a 3Dconnexion SpaceMouse
    through spacenav_node (6 axes in that order, 2 buttons)."""

    axes: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4, 5])
    signs: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    max_linear_speed: float = 0.10       # m/s at full deflection
    max_angular_speed: float = 0.6       # rad/s at full deflection
    deadzone: float = 0.1                # |axis| below this counts as 0
    buttons: dict[str, int] = field(default_factory=lambda: {"gripper": 0, "start": -1, "stop": -1,
                                                             "discard": 1})

    def __post_init__(self) -> None:
        if len(self.axes) != 6 or len(self.signs) != 6:
            raise ValueError("joy axes and signs need 6 entries: [x, y, z, roll, pitch, yaw]")
        if not 0.0 <= self.deadzone < 1.0:
            raise ValueError(f"joy deadzone must be in [0, 1), got {self.deadzone}")
        unknown = set(self.buttons) - set(EVENTS)
        if unknown:
            raise ValueError(f"unknown joy button events {sorted(unknown)} (known: {EVENTS})")


class JoyMapper:
    """Joy axes -> velocities (deadzone, rescaled so the output is continuous), integrated
    over ``dt``; buttons fire their event on the press edge only."""

    def __init__(self, cfg: JoyConfig) -> None:
        self.cfg = cfg
        self._prev_buttons: list[int] = []

    def _axis(self, axes, i: int) -> float:
        idx = self.cfg.axes[i]
        if idx < 0 or idx >= len(axes):
            return 0.0
        v = float(np.clip(axes[idx], -1.0, 1.0))
        dz = self.cfg.deadzone
        if abs(v) <= dz or not np.isfinite(v):
            return 0.0
        return float(np.sign(v) * (abs(v) - dz) / (1.0 - dz)) * self.cfg.signs[i]

    def velocity(self, axes) -> np.ndarray:
        """[vx, vy, vz, wx, wy, wz] in m/s and rad/s."""
        v = np.array([self._axis(axes, i) for i in range(6)])
        v[:3] *= self.cfg.max_linear_speed
        v[3:] *= self.cfg.max_angular_speed
        return v

    def map(self, axes, buttons, dt: float) -> TeleopCommand:
        v = self.velocity(axes) * max(0.0, float(dt))
        cmd = TeleopCommand(dpos=v[:3], drot=v[3:])
        buttons = list(buttons)
        prev = self._prev_buttons + [0] * max(0, len(buttons) - len(self._prev_buttons))
        for event, idx in self.cfg.buttons.items():
            if 0 <= idx < len(buttons) and buttons[idx] and not prev[idx]:
                cmd.events.append(event)
        self._prev_buttons = buttons
        return cmd


# ------------------------------------------------------------------ Cartesian target
class CartesianTarget:
    """The commanded end-effector pose (4x4, base frame) and gripper. ``sync`` takes the
    measured pose (FK of /joint_states); ``step`` applies a command: translation clamped to
    ``max_step_m`` per step and into the workspace box, rotation clamped to ``max_step_rad``."""

    def __init__(self, workspace_min, workspace_max, max_step_m: float = 0.05,
                 max_step_rad: float = 0.3, gripper: float = 1.0) -> None:
        self.ws_min = np.asarray(workspace_min, dtype=float).reshape(3)
        self.ws_max = np.asarray(workspace_max, dtype=float).reshape(3)
        self.max_step_m, self.max_step_rad = float(max_step_m), float(max_step_rad)
        self.T: np.ndarray | None = None
        self.gripper = float(gripper)

    @property
    def ready(self) -> bool:
        return self.T is not None

    def sync(self, T_base_ee: np.ndarray) -> None:
        self.T = np.array(T_base_ee, dtype=float)

    def toggle_gripper(self) -> float:
        self.gripper = 0.0 if self.gripper >= 0.5 else 1.0
        return self.gripper

    def step(self, cmd: TeleopCommand) -> np.ndarray | None:
        """New target (or None before the first sync). Non-finite commands are ignored."""
        if self.T is None:
            return None
        dp = np.asarray(cmd.dpos, dtype=float).reshape(3)
        dr = np.asarray(cmd.drot, dtype=float).reshape(3)
        if not (np.all(np.isfinite(dp)) and np.all(np.isfinite(dr))):
            return self.T.copy()
        n = np.linalg.norm(dp)
        if n > self.max_step_m:
            dp = dp * (self.max_step_m / n)
        a = np.linalg.norm(dr)
        if a > self.max_step_rad:
            dr = dr * (self.max_step_rad / a)
        T = self.T.copy()
        T[:3, 3] = np.clip(T[:3, 3] + dp, self.ws_min, self.ws_max)
        T[:3, :3] = Rotation.from_rotvec(dr).as_matrix() @ T[:3, :3]
        self.T = T
        return T.copy()


# ------------------------------------------------------------------ leader-follower
@dataclass
class LeaderConfig:
    """Leader arm /joint_states -> follower joint targets: follower joint j follows leader
    joint ``leader_joint_names[j]`` as ``sign * q + offset``. The gripper follows
    ``leader_gripper_joint`` linearly mapped from [closed, open] to [0, 1] ('' = keyboard
    / button toggle only)."""

    leader_joint_names: list[str]
    signs: list[float] | None = None
    offsets: list[float] | None = None
    leader_gripper_joint: str = ""
    leader_gripper_closed: float = 0.0
    leader_gripper_open: float = 0.04

    def __post_init__(self) -> None:
        n = len(self.leader_joint_names)
        self.signs = list(self.signs) if self.signs else [1.0] * n
        self.offsets = list(self.offsets) if self.offsets else [0.0] * n
        if len(self.signs) != n or len(self.offsets) != n:
            raise ValueError(f"leader signs/offsets need {n} entries (one per leader joint)")
        if self.leader_gripper_joint and self.leader_gripper_open == self.leader_gripper_closed:
            raise ValueError("leader_gripper_open must differ from leader_gripper_closed")


class LeaderMapper:
    def __init__(self, cfg: LeaderConfig) -> None:
        self.cfg = cfg

    def map(self, names, positions) -> tuple[np.ndarray | None, float | None, str]:
        """(follower q or None, gripper in [0, 1] or None, reason when q is None)."""
        idx = {n: i for i, n in enumerate(names)}
        missing = [n for n in self.cfg.leader_joint_names if n not in idx]
        if missing:
            return None, None, f"leader joint_states lack {missing}"
        q = np.array([positions[idx[n]] for n in self.cfg.leader_joint_names], dtype=float)
        if not np.all(np.isfinite(q)):
            return None, None, "leader joint_states are not finite"
        q = q * np.asarray(self.cfg.signs) + np.asarray(self.cfg.offsets)
        g = None
        jn = self.cfg.leader_gripper_joint
        if jn and jn in idx and np.isfinite(positions[idx[jn]]):
            lo, hi = self.cfg.leader_gripper_closed, self.cfg.leader_gripper_open
            g = float(np.clip((positions[idx[jn]] - lo) / (hi - lo), 0.0, 1.0))
        return q, g, ""


# ------------------------------------------------------------------ terminal
class RawTerminal:
    """Context manager: stdin in cbreak/raw mode (no echo, no line buffering), restored on
    exit even after an exception. ``read_key(timeout)`` returns one character or ''.
    Without a TTY (tests, pipes) the terminal is left alone and keys are read as they come."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stdin
        self._old = None

    def __enter__(self) -> "RawTerminal":
        try:
            # termios / tty: POSIX terminals only, the keyboard driver
            import termios
            import tty

            if os.isatty(self.stream.fileno()):
                self._old = termios.tcgetattr(self.stream.fileno())
                tty.setraw(self.stream.fileno())
        except (ImportError, OSError, ValueError, AttributeError):
            self._old = None
        return self

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            # termios / tty: POSIX terminals only, the keyboard driver
            import termios

            termios.tcsetattr(self.stream.fileno(), termios.TCSADRAIN, self._old)
            self._old = None

    def read_key(self, timeout: float = 0.1) -> str:
        try:
            fd = self.stream.fileno()
        except (OSError, ValueError, AttributeError):
            return ""
        r, _, _ = select.select([fd], [], [], timeout)
        if not r:
            return ""
        data = os.read(fd, 1)
        return data.decode("utf-8", "replace") if data else ""
