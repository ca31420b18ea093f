"""A Pose-VLA policy served over the network: the model on a GPU host, the robot's computer asks.

    GPU host:   posevla serve --checkpoint checkpoints/demo --port 8765
    robot PC:   policy = RemotePolicy("gpu-host:8765")
                pred = policy.predict(rgb, depth, K, "pick up the red cube")     # a types.Prediction

``RemotePolicy`` has the model contract callers of a local model use (``predict(rgb, depth, K,
instruction, views=None, state=None)``, ``needs_state``, ``max_cameras``, ``architecture``) and
returns the very ``Prediction`` the served model returned: same tokens, same poses, bit for bit.
So policy_node (its ``policy_server`` parameter) and plain Python scripts use it in place of
``policy.load_policy``. ``PolicyServer`` calls the real model's ``predict`` on the decoded
observation; nothing here imports ROS.

Transport: one websocket per client (the ``websockets`` package, its threaded API), binary
messages in msgpack. numpy arrays travel as a msgpack extension (dtype, shape, raw bytes: no
pickle, object dtypes refused), tuples and numpy scalars keep their type, and the result
dataclasses (``Prediction``, ``PoseTarget``, ``Pose``, ``Waypoint``) travel field by field and
are rebuilt without re-running their constructors (``Pose`` re-normalizes its quaternion,
which could move the last bit). Only those four classes are ever built from a message.

Protocol (version ``PROTOCOL``):
  server -> client on connect  {"type": "hello", "protocol", "meta": {checkpoint, architecture,
                                head, needs_state, max_cameras, device}}
  client -> server             {"type": "predict", "id", "timeout_s", "obs": {rgb, depth, K,
                                instruction[, views][, state]}, "kw": {use_cache, constrained}}
  server -> client             {"type": "prediction", "id", "prediction", "server_ms"}
                               or {"type": "error", "id", "error"}

Failure: a server that is down, slow (no answer within ``timeout_s``), restarting or that now
serves a different model gives ``PolicyServerError``: no prediction for that call, the
connection dropped, and the next call connects afresh. Dropping the connection after a timeout
is what keeps a late answer from being taken for the next observation's (request ids are
checked as well). A request the server dequeues after its ``timeout_s`` has passed is not run.
An exception of the served model is ``RemoteModelError`` (the connection stays up).
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import threading
import time
from typing import Any, Callable

import msgpack
import numpy as np

PROTOCOL = 1
DEFAULT_PORT = 8765
MAX_MESSAGE_BYTES = 256 * 2**20     # several full-HD RGB-D cameras in one observation
#: what the handshake checks on every reconnect: a server restarted with another kind of model
#: must not feed a node that was set up (robot state, cameras) for the first one
CONTRACT_KEYS = ("architecture", "head", "needs_state", "max_cameras")
#: predict() keyword arguments that travel (plain values); a torch.Generator, say, cannot
PREDICT_KWARGS = ("use_cache", "constrained")

log = logging.getLogger("posevla.serving")


class PolicyServerError(ConnectionError):
    """No answer from the policy server for this call (down, slow, restarting, another model, a
    garbled reply). No prediction; the next call reconnects."""


class _ConnectionLost(PolicyServerError):
    """The connection closed under a request (the server restarted or went away)."""


class RemoteModelError(RuntimeError):
    """The served model raised on this observation (the message says what); no prediction."""


# ------------------------------------------------------------------ codec: msgpack + numpy
_EXT_NDARRAY, _EXT_SCALAR, _EXT_TUPLE, _EXT_DATACLASS = 1, 2, 3, 4
_DATACLASSES: dict[str, type] = {}


def _result_classes() -> dict[str, type]:
    """The dataclasses a message may carry (imported on first use: ``posevla --help`` stays quick)."""
    if not _DATACLASSES:
        from posevla_core.poses import Pose, PoseTarget, Prediction, Waypoint

        _DATACLASSES.update({c.__name__: c for c in (Prediction, PoseTarget, Pose, Waypoint)})
    return _DATACLASSES


def _dtype(name: str) -> np.dtype:
    dt = np.dtype(name)
    if dt.hasobject:
        raise ValueError(f"refusing an object dtype ({name}) in a message")
    return dt


def _default(obj: Any):
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError(f"cannot send a numpy array of dtype {obj.dtype} (objects)")
        a = np.ascontiguousarray(obj)
        return msgpack.ExtType(_EXT_NDARRAY, packb([a.dtype.str, list(a.shape), a.tobytes()]))
    if isinstance(obj, np.generic):
        return msgpack.ExtType(_EXT_SCALAR, packb([obj.dtype.str, obj.tobytes()]))
    if isinstance(obj, tuple):
        return msgpack.ExtType(_EXT_TUPLE, packb(list(obj)))
    if dataclasses.is_dataclass(obj) and _result_classes().get(type(obj).__name__) is type(obj):
        fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        return msgpack.ExtType(_EXT_DATACLASS, packb([type(obj).__name__, fields]))
    if isinstance(obj, int):           # int / float / str subclasses (strict_types sends them here)
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, str):
        return str(obj)
    raise TypeError(f"cannot send a {type(obj).__name__} to or from a policy server")


def _ext_hook(code: int, data: bytes):
    if code == _EXT_NDARRAY:
        dt, shape, raw = unpackb(data)
        return np.frombuffer(raw, _dtype(dt)).reshape(shape).copy()     # writable, owns its memory
    if code == _EXT_SCALAR:
        dt, raw = unpackb(data)
        return np.frombuffer(raw, _dtype(dt))[0]
    if code == _EXT_TUPLE:
        return tuple(unpackb(data))
    if code == _EXT_DATACLASS:
        name, values = unpackb(data)
        cls = _result_classes().get(name)
        if cls is None:
            raise ValueError(f"unknown result type {name!r} in a message")
        names = {f.name for f in dataclasses.fields(cls)}
        if set(values) != names:
            raise ValueError(f"{name} fields differ between client and server (missing "
                             f"{sorted(names - set(values))}, unknown {sorted(set(values) - names)}): "
                             f"are both on the same posevla release?")
        obj = cls.__new__(cls)          # as sent: no __post_init__ (see the module docstring)
        obj.__dict__.update(values)
        return obj
    return msgpack.ExtType(code, data)


def packb(obj: Any) -> bytes:
    """``obj`` (dicts, lists, str, numbers, None, numpy arrays / scalars, tuples, result
    dataclasses) -> msgpack bytes. ``strict_types``: tuples and subclasses reach ``_default``."""
    return msgpack.packb(obj, default=_default, strict_types=True, use_bin_type=True)


def unpackb(data: bytes) -> Any:
    """The inverse of ``packb``; unknown extension codes stay ``msgpack.ExtType``."""
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False)


# ------------------------------------------------------------------ what a model needs
def checkpoint_meta(model, checkpoint: str = "") -> dict:
    """The handshake's description of the served model: what a caller sets itself up for."""
    from pathlib import Path

    head = "flow" if hasattr(model, "expert") and hasattr(model, "backbone") else "tokens"
    device = getattr(model, "device", "cpu")
    return {"checkpoint": Path(checkpoint).name if checkpoint else "", "architecture": getattr(model, "architecture", ""),
            "head": head, "needs_state": bool(getattr(model, "needs_state", False)),
            "max_cameras": int(getattr(model, "max_cameras", 1)), "device": str(device)}


def parse_address(address: str) -> str:
    """'host:port', 'host' (port 8765), '[::1]:8765' or a ws:// URI -> the websocket URI."""
    a = address.strip()
    if not a:
        raise ValueError("empty policy server address (give host:port)")
    if a.startswith(("ws://", "wss://")):
        return a
    if a.startswith("["):                                   # [v6]:port
        host, _, rest = a[1:].partition("]")
        port = rest.lstrip(":") or str(DEFAULT_PORT)
        host = f"[{host}]"
    elif a.count(":") == 1:
        host, port = a.split(":")
    elif ":" in a:
        raise ValueError(f"policy server {address!r}: write an IPv6 address as [addr]:port")
    else:
        host, port = a, str(DEFAULT_PORT)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"policy server {address!r}: expected host:port (e.g. gpu-host:{DEFAULT_PORT})")
    return f"ws://{host}:{port}"


# ------------------------------------------------------------------ server
class PolicyServer:
    """Serves ``model`` (anything with the ``predict`` contract; usually ``load_policy(dir)``)
    on ``host:port`` (port 0: a free one, see ``port``). One thread per client; the model runs
    one observation at a time. ``start()`` serves in a background thread, ``serve_forever()``
    in this one; ``close()`` stops accepting and closes every client connection."""

    def __init__(self, model, host: str = "127.0.0.1", port: int = DEFAULT_PORT, checkpoint: str = "") -> None:
        from websockets.sync.server import serve

        self.model = model
        self.meta = checkpoint_meta(model, checkpoint)
        self._model_lock = threading.Lock()
        self._conns: set = set()
        self._conns_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._server = serve(self._handle, host, port, compression=None, max_size=MAX_MESSAGE_BYTES)
        self.host = host
        self.port = self._server.socket.getsockname()[1]

    @classmethod
    def from_checkpoint(cls, checkpoint: str, device: str = "auto", host: str = "127.0.0.1",
                        port: int = DEFAULT_PORT, decoding: str = "static") -> "PolicyServer":
        """``decoding``: the model's ``set_decoding`` where it has one (the small model's decode
        step, a flow head's Euler steps: "static-compile" compiles them here; where that fails, a
        warning and the uncompiled step)."""
        from posevla_core.policies.base import load_policy, use_decoding

        model = load_policy(checkpoint, device=device)
        fallback = use_decoding(model, decoding)
        if fallback:
            log.warning("%s", fallback)
        return cls(model, host, port, checkpoint=str(checkpoint))

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def warmup(self, size: int = 224) -> float:
        """One prediction on a blank frame (first CUDA kernels, caches) so that the first real
        request does not run into the client's timeout; its ms. A model that refuses the blank
        frame is fine: the call was the point."""
        rgb = np.zeros((size, size, 3), np.uint8)
        depth = np.ones((size, size), np.float32)
        K = np.array([[size, 0.0, (size - 1) / 2], [0.0, size, (size - 1) / 2], [0.0, 0.0, 1.0]])
        state = {"T_base_ee": np.eye(4), "gripper": 1.0, "T_base_cam": np.eye(4)} if self.meta["needs_state"] else None
        t0 = time.perf_counter()
        try:
            with self._model_lock:
                self.model.predict(rgb, depth, K, "pick up the cube", state=state)
        except Exception as e:  # noqa: BLE001 - a warm-up, not a check
            log.info("warm-up prediction raised %r (ignored)", e)
        return (time.perf_counter() - t0) * 1e3

    def start(self) -> "PolicyServer":
        self._thread = threading.Thread(target=self._server.serve_forever, name="posevla-policy-server", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def close(self) -> None:
        """Stop accepting, close the open connections (code 1012: service restart), wait for
        the serving thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            c.close(1012, "policy server restarting")
        if self._thread is not None:
            self._thread.join(10.0)

    def __enter__(self) -> "PolicyServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # one thread per connection
    def _handle(self, conn) -> None:
        from websockets.exceptions import ConnectionClosed

        with self._conns_lock:
            self._conns.add(conn)
        try:
            conn.send(packb({"type": "hello", "protocol": PROTOCOL, "meta": self.meta}))
            for message in conn:
                arrived = time.monotonic()
                conn.send(packb(self._answer(message, arrived)))
        except ConnectionClosed:
            pass
        finally:
            with self._conns_lock:
                self._conns.discard(conn)

    def _answer(self, message, arrived: float) -> dict:
        rid = None
        try:
            if not isinstance(message, bytes):
                raise ValueError("expected a binary msgpack message")
            req = unpackb(message)
            if not isinstance(req, dict) or req.get("type") != "predict":
                raise ValueError(f"expected a predict request, got {type(req).__name__}")
            rid = req.get("id")
            missing = [k for k in ("rgb", "K", "instruction") if k not in req.get("obs", {})]
            if missing:
                raise ValueError(f"the observation has no {missing}")
            obs, kw = req["obs"], {k: v for k, v in (req.get("kw") or {}).items() if k in PREDICT_KWARGS}
            for key in ("views", "state"):
                if obs.get(key) is not None:
                    kw[key] = obs[key]
        except Exception as e:  # noqa: BLE001 - a bad request gets an error reply, the server goes on
            return {"type": "error", "id": rid, "error": f"bad request: {e}"}
        budget = req.get("timeout_s")
        with self._model_lock:
            if budget is not None and time.monotonic() - arrived > budget:
                # the client gave up on it already (and dropped the connection): do not queue GPU work
                return {"type": "error", "id": rid, "error": f"request expired in the queue ({budget} s)"}
            t0 = time.perf_counter()
            try:
                pred = self.model.predict(obs["rgb"], obs.get("depth"), obs["K"], obs["instruction"], **kw)
            except Exception as e:  # noqa: BLE001 - the model's error goes back to the caller
                return {"type": "error", "id": rid, "error": f"{type(e).__name__}: {e}"}
            ms = (time.perf_counter() - t0) * 1e3
        return {"type": "prediction", "id": rid, "prediction": pred, "server_ms": ms}


# ------------------------------------------------------------------ client
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
            if reply.get("type") != "prediction" or type(pred) is not _result_classes()["Prediction"]:
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
            raise PolicyServerError(f"policy server {self.address} unreachable: {_why(e)}") from None
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
            raise _ConnectionLost(f"policy server {self.address}: connection lost ({_why(e)})") from None
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


def _why(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


# ------------------------------------------------------------------ command line
def _threads(text: str) -> int:
    """``--threads``: an int >= 0, refused by argparse with one line otherwise."""
    n = int(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0 = half the CPUs), got {n}")
    return n


def add_arguments(ap: argparse.ArgumentParser) -> argparse.ArgumentParser:
    ap.add_argument("--checkpoint", required=True, help="checkpoint directory (small, flow or PaliGemma)")
    ap.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT}; 0 = a free one)")
    ap.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0: every interface)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    ap.add_argument("--decoding", default="static-compile", choices=("static-compile", "static", "eager"),
                    help="default static-compile: a small model's pose-token decode step or a flow head's Euler "
                         "steps compiled at start, as policy_node's decoding parameter; PaliGemma token heads keep "
                         "their own")
    ap.add_argument("--threads", type=_threads, default=0,
                    help="torch's CPU threads; 0 (default) = half the CPUs, at least 1, as policy_node's "
                         "inference_threads (each connection predicts on its own thread)")
    ap.add_argument("--no-warmup", action="store_true", help="skip the warm-up prediction at start")
    return ap


def main_args(a: argparse.Namespace) -> int:
    """``posevla serve`` / ``python -m posevla_core.serving.server``: load, warm up, serve until Ctrl-C."""
    logging.basicConfig(level=logging.INFO, format="[posevla serve] %(message)s")
    from posevla_core.paths import resolve_checkpoint
    from posevla_core.policies.base import set_inference_threads   # torch: the server's side only, as from_checkpoint

    ckpt = resolve_checkpoint(a.checkpoint)
    log.info("torch uses %d CPU thread(s)", set_inference_threads(a.threads))
    server = PolicyServer.from_checkpoint(str(ckpt), a.device, a.host, a.port, a.decoding)
    m = server.meta
    if not a.no_warmup:
        log.info("warm-up prediction: %.0f ms", server.warmup())
    # the line scripts (and the tests) wait for: the port is bound and the model answers
    print(f"[posevla serve] serving {ckpt} ({m['architecture']}, {m['head']} head, needs_state={m['needs_state']}, "
          f"max_cameras={m['max_cameras']}, {m['device']}) on ws://{a.host}:{server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main_args(add_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0])).parse_args()))
