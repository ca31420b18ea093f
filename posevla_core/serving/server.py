"""``PolicyServer``: one checkpoint served to any number of clients (a thread per connection),
and the ``posevla serve`` command. Protocol in ``serving.protocol``."""
from __future__ import annotations

import argparse
import logging
import threading
import time

import numpy as np

from posevla_core.paths import resolve_checkpoint
from posevla_core.serving.protocol import (DEFAULT_PORT, MAX_MESSAGE_BYTES, PREDICT_KWARGS, PROTOCOL, checkpoint_meta,
                                           packb, unpackb)

log = logging.getLogger("posevla.serving")


class PolicyServer:
    """Serves ``model`` (anything with the ``predict`` contract; usually ``load_policy(dir)``)
    on ``host:port`` (port 0: a free one, see ``port``). One thread per client; the model runs
    one observation at a time. ``start()`` serves in a background thread, ``serve_forever()``
    in this one; ``close()`` stops accepting and closes every client connection."""

    def __init__(self, model, host: str = "127.0.0.1", port: int = DEFAULT_PORT, checkpoint: str = "") -> None:
        # websockets: optional (the serve extra)
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
        # torch: `posevla --help` builds the serve parser from this module and must not load it
        from posevla_core.policies.factory import load_policy
        from posevla_core.policies.base import use_decoding

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
        # websockets: optional (the serve extra)
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
    from posevla_core.policies.base import set_inference_threads  # torch: the server's side only, as from_checkpoint

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
