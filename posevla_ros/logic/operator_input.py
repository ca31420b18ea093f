"""The operator's say in an evaluation or collection run on a real arm (no ROS): "ready" (the
scene is reset), the outcome mark ("success" / "failure") and "abort", from evaluator_node's
services (``/evaluator/<name>``) or keys in its terminal (``read_operator_keys``), handed to
the evaluation loop's thread through ``OperatorInput``.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

OPERATOR_SERVICES = ("ready", "success", "failure", "abort")      # /evaluator/<name>, std_srvs/Trigger


class OperatorInput:
    """The operator's say on a real arm, from any thread (keys, service callbacks) to the
    loop thread: "ready" (the scene is reset, start the episode) and the outcome mark
    ("success" / "failure"). Each is taken only when it can apply - "ready" while the loop
    waits for it, a mark while an episode runs - and refused otherwise (the caller is told),
    so a key pressed early never starts an episode the operator did not see coming."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._state = "idle"              # idle | waiting | running
        self._mark: str | None = None
        self._ready = False

    def set_ready(self) -> tuple[bool, str]:
        with self._cv:
            if self._state != "waiting":
                return False, f"not waiting for 'ready' (episode {self._state})"
            self._ready = True
            self._cv.notify_all()
            return True, "ready: episode starting"

    def mark(self, what: str) -> tuple[bool, str]:
        if what not in ("success", "failure"):
            raise ValueError(f"unknown mark {what!r}")
        with self._cv:
            if self._state != "running":
                return False, f"no episode running to mark {what} ({self._state})"
            self._mark = what
            return True, f"episode marked {what}"

    def outcome(self) -> str | None:
        with self._cv:
            return self._mark

    def begin(self) -> None:
        """An episode runs from now (the sim reset it, or the operator said ready)."""
        with self._cv:
            self._state, self._mark = "running", None

    def end(self) -> None:
        with self._cv:
            self._state, self._ready = "idle", False

    def wait_ready(self, stop: Callable[[], bool], poll_s: float = 0.1) -> bool:
        """Wait for "ready" (True; the episode then runs) or ``stop()`` (False)."""
        with self._cv:
            self._state, self._ready, self._mark = "waiting", False, None
            while not self._ready:
                if stop():
                    self._state = "idle"
                    return False
                self._cv.wait(poll_s)
            self._state, self._ready = "running", False
            return True


OPERATOR_KEYS = {"start": "ready", "success": "success", "failure": "failure", "quit": "abort"}  # key event -> say


def read_operator_keys(stop: Callable[[], bool], say: Callable[[str], Any]) -> None:
    """The operator's keys in this terminal (Enter / n ready, y success, b failure, q abort;
    posevla_ros.logic.teleop key bindings) until ``stop()``; ``say(what)`` takes each."""
    # logic.teleop pulls in scipy; only a run that reads the operator's keys needs it
    from posevla_ros.logic.teleop import KeyboardMapper, RawTerminal

    mapper = KeyboardMapper()
    with RawTerminal() as term:
        while not stop():
            k = term.read_key(0.1)
            for ev in (mapper.map(k).events if k else ()):
                if ev in OPERATOR_KEYS:
                    say(OPERATOR_KEYS[ev])
