"""The policy server's wire protocol: message codec, errors, and what a client checks.

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

import dataclasses
from pathlib import Path
from typing import Any

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


def result_classes() -> dict[str, type]:
    """The dataclasses a message may carry (imported on first use: ``posevla --help`` stays quick)."""
    if not _DATACLASSES:
        # poses pulls in scipy: `posevla --help` builds the serve parser from this package
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
    if dataclasses.is_dataclass(obj) and result_classes().get(type(obj).__name__) is type(obj):
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
        cls = result_classes().get(name)
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


def why(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
