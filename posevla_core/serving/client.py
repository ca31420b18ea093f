"""``RemotePolicy``: a served checkpoint behind the model contract (``predict``, ``needs_state``,
``max_cameras``, ``architecture``), for policy_node and plain Python scripts."""
from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Callable

import numpy as np

from posevla_core.serving.protocol import (CONTRACT_KEYS, MAX_MESSAGE_BYTES, PREDICT_KWARGS, PROTOCOL,
                                           PolicyServerError, RemoteModelError, _ConnectionLost, packb, parse_address,
                                           result_classes, unpackb, why)

if TYPE_CHECKING:
    from posevla_core.poses import Prediction

log = logging.getLogger("posevla.serving")


class RemotePolicy:
    """A policy served by ``PolicyServer`` at ``address`` ('host:port'), used like a local one.

    Every ``predict`` has ``timeout_s`` in all (connecting included); past it, or with the
    server down, it raises ``PolicyServerError`` and the next call reconnects. The first
    handshake fixes the model contract (``meta``: needs_state, max_cameras, architecture, head);
    a later server with another contract is refused. ``on_connect(meta)`` is called after each
    (re)connection. One call at a time (a lock)."""

    def __init__(self, address: str, timeout_s: float = 1.0,
                 on_connect: Callable[[dict], None] | None = None) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.address, self.uri, self.timeout_s = address, parse_address(address), float(timeout_s)
        self.on_connect = on_connect
        self.meta: dict | None = None
        self.connects = 0                  # successful handshakes so far
        self.last_server_ms = float("nan")  # the served model's own time of the last prediction
        self._conn = None
        self._next_id = 0
        self._lock = threading.Lock()

    # the model contract callers read
    def _contract(self, key: str, default):
        if self.meta is None:
            raise PolicyServerError(f"policy server {self.address}: not connected yet (call connect())")
        return self.meta.get(key, default)

    @property
    def needs_state(self) -> bool:
        return bool(self._contract("needs_state", False))

    @property
    def max_cameras(self) -> int:
        return int(self._contract("max_cameras", 1))

    @property
    def architecture(self) -> str:
        return str(self._contract("architecture", ""))

    @property
    def head(self) -> str:
        return str(self._contract("head", "tokens"))

    def connect(self, timeout_s: float | None = None) -> dict:
        """Connect now (if not connected) and return the server's ``meta``; PolicyServerError if not."""
        with self._lock:
            self._ensure(time.monotonic() + (timeout_s or self.timeout_s))
            return dict(self.meta)

    def wait_ready(self, wait_s: float, on_retry: Callable[[str], None] | None = None,
                   stop: Callable[[], bool] | None = None, retry_s: float = 1.0) -> dict:
        """``connect`` until it works, ``wait_s`` at most (0: once); ``on_retry(reason)`` after each
        failed try; ``stop()`` true ends the wait (KeyboardInterrupt). PolicyServerError at the end."""
        end = time.monotonic() + wait_s
        while True:
            try:
                return self.connect(max(self.timeout_s, 1.0))
            except PolicyServerError as e:
                if time.monotonic() + retry_s > end:
                    raise PolicyServerError(f"{e} (waited {wait_s:g} s)") from None
                if on_retry is not None:
                    on_retry(str(e))
            deadline = time.monotonic() + retry_s
            while time.monotonic() < deadline:
                if stop is not None and stop():
                    raise KeyboardInterrupt
                time.sleep(min(0.1, retry_s))

    def predict(self, rgb: np.ndarray, depth: np.ndarray | None, K: np.ndarray, instruction: str,
                views: list[dict] | None = None, state: dict | None = None, **kw) -> Prediction:
        """The served model's ``predict`` on this observation (see ``PosePolicy.predict``)."""
        bad = set(kw) - set(PREDICT_KWARGS)
        if bad:
            raise TypeError(f"RemotePolicy.predict: {sorted(bad)} cannot be sent to a policy server "
                            f"(only {list(PREDICT_KWARGS)})")
        obs = {"rgb": np.asarray(rgb), "depth": None if depth is None else np.asarray(depth),
               "K": np.asarray(K), "instruction": str(instruction)}
        if views:
            obs["views"] = list(views)
        if state is not None:
            obs["state"] = dict(state)
        with self._lock:
            deadline = time.monotonic() + self.timeout_s
            reused = self._conn is not None
            self._ensure(deadline)
            self._next_id += 1
            rid = self._next_id
            request = packb({"type": "predict", "id": rid, "timeout_s": self.timeout_s, "obs": obs, "kw": kw})
            try:
                reply = self._exchange(request, deadline)
            except _ConnectionLost:
                if not reused:
                    raise
                # a kept connection the server closed meanwhile (it restarted): once more on a fresh
                # one, within the same deadline; the answer is matched to this request's id either way
                self._ensure(deadline)
                reply = self._exchange(request, deadline)
            if not isinstance(reply, dict) or reply.get("id") != rid:
                self._drop()
                raise PolicyServerError(f"policy server {self.address}: a reply to another request; "
                                        f"dropped the connection")
            if reply.get("type") == "error":
                raise RemoteModelError(f"policy server {self.address}: {reply.get('error')}")
            pred = reply.get("prediction")
            if reply.get("type") != "prediction" or type(pred) is not result_classes()["Prediction"]:
                self._drop()
                raise PolicyServerError(f"policy server {self.address}: unexpected reply "
                                        f"{reply.get('type')!r}; dropped the connection")
            self.last_server_ms = float(reply.get("server_ms", float("nan")))
            return pred

    def close(self) -> None:
        with self._lock:
            self._drop()

    def __enter__(self) -> "RemotePolicy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- under self._lock
    def _ensure(self, deadline: float) -> None:
        # websockets: optional (the serve extra)
        from websockets.exceptions import WebSocketException
        from websockets.sync.client import connect

        if self._conn is not None:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise PolicyServerError(f"policy server {self.address}: no time left to connect")
        try:
            conn = connect(self.uri, open_timeout=left, close_timeout=min(self.timeout_s, 2.0), compression=None,
                           max_size=MAX_MESSAGE_BYTES, proxy=None)
        except (OSError, TimeoutError, WebSocketException) as e:
            raise PolicyServerError(f"policy server {self.address} unreachable: {why(e)}") from None
        self._conn = conn
        hello = self._exchange(None, deadline)
        if not isinstance(hello, dict) or hello.get("type") != "hello" or hello.get("protocol") != PROTOCOL:
            self._drop()
            got = hello.get("protocol") if isinstance(hello, dict) else None
            raise PolicyServerError(f"policy server {self.address}: not a posevla policy server of protocol "
                                    f"{PROTOCOL} (got {got!r})")
        meta = dict(hello.get("meta") or {})
        if self.meta is not None:
            changed = [f"{k} {self.meta.get(k)!r} -> {meta.get(k)!r}" for k in CONTRACT_KEYS
                       if self.meta.get(k) != meta.get(k)]
            if changed:
                self._drop()
                raise PolicyServerError(f"policy server {self.address} now serves another kind of model "
                                        f"({', '.join(changed)}); not using it: restart this client")
        self.meta = meta
        self.connects += 1
        if self.on_connect is not None:
            self.on_connect(dict(meta))

    def _exchange(self, request: bytes | None, deadline: float):
        """Send ``request`` (None: only receive) and return the decoded reply, within ``deadline``.
        Any failure drops the connection (a late reply can never be read as a later one's)."""
        # websockets: optional (the serve extra)
        from websockets.exceptions import WebSocketException

        try:
            if request is not None:
                self._conn.send(request)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            data = self._conn.recv(timeout=left)
        except TimeoutError:
            self._drop()
            raise PolicyServerError(f"policy server {self.address}: no answer within {self.timeout_s:g} s "
                                    f"(policy_server_timeout_s); dropped the connection") from None
        except (OSError, WebSocketException) as e:
            self._drop()
            raise _ConnectionLost(f"policy server {self.address}: connection lost ({why(e)})") from None
        try:
            return unpackb(data)
        except Exception as e:  # noqa: BLE001 - a garbled message is no prediction
            self._drop()
            raise PolicyServerError(f"policy server {self.address}: unreadable reply ({e})") from None

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
