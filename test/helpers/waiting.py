"""The suite's one polling loop.

``poll`` answers whether a predicate came true in time; ``wait_until`` asserts it, naming
what it waited for. Both take ``step(interval)``: what to do between tries (default: sleep;
``test.helpers.ros.spin_until`` spins an rclpy executor instead).
"""
from __future__ import annotations

import time
from typing import Callable


def poll(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.05,
         step: Callable[[float], object] | None = None) -> bool:
    """True as soon as ``predicate()`` is truthy, False when ``timeout`` seconds pass first
    (the predicate is tried once more at the deadline)."""
    step = step or time.sleep
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        step(interval)
    return bool(predicate())


def wait_until(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.05,
               what: str = "the condition", step: Callable[[float], object] | None = None) -> None:
    """Wait until ``predicate()`` is truthy; AssertionError naming ``what`` after ``timeout`` s."""
    if not poll(predicate, timeout, interval, step):
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
