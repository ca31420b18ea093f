"""Two small threading helpers the nodes share: a newest-wins worker thread (``LatestWorker``)
and a log throttle keyed by reason (``KeyedThrottle``). No ROS: the throttle takes any logger
with ``warn`` / ``info`` / ``error`` methods."""
from __future__ import annotations

import threading
import time
import traceback
from typing import Any, Callable


class LatestWorker:
    """One daemon thread that runs ``fn(item)`` on the newest submitted item. Submitting
    while an item is still waiting replaces it (newest wins; the old one is counted in
    ``dropped``). ``submit`` never blocks on ``fn``, so ROS callbacks stay instant.
    ``min_period_s`` spaces the starts of consecutive runs (rate limit)."""

    def __init__(self, fn: Callable[[Any], None], name: str = "worker", min_period_s: float = 0.0,
                 on_error: Callable[[BaseException, str], None] | None = None) -> None:
        self._fn, self._on_error = fn, on_error
        self.min_period_s = float(min_period_s)
        self._cv = threading.Condition()
        self._item: Any = None
        self._has_item = self._busy = False
        self._stop = False
        self._last_start = -1e18
        self.dropped = self.processed = 0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: Any) -> None:
        with self._cv:
            if self._has_item:
                self.dropped += 1
            self._item, self._has_item = item, True
            self._cv.notify_all()

    def idle(self) -> bool:
        with self._cv:
            return not self._has_item and not self._busy

    def wait_idle(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        with self._cv:
            while self._has_item or self._busy:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
            return True

    def stop(self, timeout: float = 5.0) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._stop and (not self._has_item or
                                          time.monotonic() - self._last_start < self.min_period_s):
                    wait = None if not self._has_item else self.min_period_s - (time.monotonic() - self._last_start)
                    self._cv.wait(wait)
                if self._stop:
                    return
                item, self._item, self._has_item = self._item, None, False
                self._busy = True
                self._last_start = time.monotonic()
            try:
                self._fn(item)
            except Exception as e:  # noqa: BLE001 - a bad item must not kill the worker
                # after stop() the node is being torn down: its last item may fail on a
                # destroyed publisher, which is no error worth a traceback at shutdown
                if self._on_error is not None and not self._stop:
                    self._on_error(e, traceback.format_exc())
            finally:
                with self._cv:
                    self._busy = False
                    self.processed += 1
                    self._cv.notify_all()


class KeyedThrottle:
    """``logger.warn`` at most once per ``period_s`` per key (rclpy's own throttle keys on
    the call site, which would merge different reasons logged from one helper)."""

    def __init__(self, logger, period_s: float = 5.0) -> None:
        self._logger, self.period_s = logger, period_s
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def __call__(self, key: str, msg: str, level: str = "warn") -> None:
        now = time.monotonic()
        with self._lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            n = self.counts[key]
            if now - self._last.get(key, -1e18) < self.period_s:
                return
            self._last[key] = now
        getattr(self._logger, level)(f"{msg} [{key}, seen {n}x]")
