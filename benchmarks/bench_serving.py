"""Policy-server benchmark: what asking a served model over loopback costs on top of the model.

The same model (the shipped demo checkpoint) answers the same frame twice per round, interleaved:
``local`` is ``load_policy(...).predict`` in this process; ``remote`` is ``RemotePolicy.predict``
against ``posevla serve`` running as its own process on 127.0.0.1 (CPU), so it includes msgpack
encoding both ways, the websocket round trip and the server's own predict. The result is the
ratio of the medians (remote / local) and the difference in ms, per frame size: the sim camera
(224 x 224) and a 640 x 480 camera, both rendered from the sim's scene of seed 1000 so the model
answers with a full motion (on a random frame it refuses after one token, and the ratio would
measure a refusal); the local answer is checked to decode every pose token and the served one to
be the same, else the benchmark stops with an error. ``server_ms`` is the model's time inside the server and ``transport_ms``
each remote call's round trip less it (encoding, websocket, decoding), median per call. Both are timed from a
worker thread, where policy_node calls its model (``in_worker_thread``).

On one machine both processes share the same cores, so this is transport overhead, not what a
GPU host buys.

    python -m benchmarks.bench_serving --out bench_results
"""
from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch
from benchmarks.common import bench_main, interleaved_medians, require_full_answer, sim_frame, write_result

REPO = Path(__file__).resolve().parent.parent
BENCH = "bench_serving"
SIZES = ((224, 224), (640, 480))


def start_server(checkpoint: Path, log_path: Path) -> tuple[subprocess.Popen, int]:
    """``posevla serve`` on a free loopback port; (process, port) once it says it serves."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "posevla_ros.cli", "serve", "--checkpoint", str(checkpoint),
                                 "--host", "127.0.0.1", "--port", "0", "--device", "cpu"], cwd=REPO,
                                stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    end = time.monotonic() + 300
    while time.monotonic() < end and proc.poll() is None:
        m = re.search(r"on ws://127\.0\.0\.1:(\d+)", log_path.read_text())
        if m:
            return proc, int(m.group(1))
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"posevla serve did not start:\n{log_path.read_text()[-2000:]}")


def in_worker_thread(fn):
    """``fn()`` on a thread of its own, as policy_node calls its model (its LatestWorker) and as the
    server does (a thread per connection). Timing torch on the main thread instead was not the same
    measurement: with 2 OpenMP threads on a busy 2-core machine one main-thread predict took 4.0 s
    where the same predict on a worker thread took 0.38 s."""
    out: dict = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised on the caller's thread
            out["error"] = e

    t = threading.Thread(target=target, name="bench-serving")
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def run(out_dir: str | Path = "bench_results", repeats: int = 40) -> dict:
    from posevla_core.paths import default_checkpoint
    from posevla_core.policies.base import set_inference_threads
    from posevla_core.policies.factory import load_policy
    from posevla_core.serving.client import RemotePolicy

    ckpt = default_checkpoint()
    set_inference_threads(0)                  # as the server does by default (posevla serve --threads)
    model = load_policy(ckpt, device="cpu")
    model.set_decoding("static-compile")      # as the server does by default (posevla serve --decoding)
    proc, port = start_server(ckpt, Path(out_dir) / "bench_serving_server.log")
    res = {"model": str(ckpt.relative_to(REPO)) if ckpt.is_relative_to(REPO) else str(ckpt),
           "transport": "posevla serve (own process, CPU) on 127.0.0.1, websocket + msgpack",
           "threads": torch.get_num_threads(), "repeats": repeats, "frames": {}}
    try:
        with RemotePolicy(f"127.0.0.1:{port}", timeout_s=60.0) as remote:
            remote.connect()
            for w, h in SIZES:
                rgb, depth, K, instr, _ = sim_frame(width=w, height=h)
                server_ms: list[float] = []
                transport_ms: list[float] = []

                def ask():
                    t0 = time.perf_counter()
                    remote.predict(rgb, depth, K, instr)
                    server_ms.append(remote.last_server_ms)
                    transport_ms.append((time.perf_counter() - t0) * 1e3 - remote.last_server_ms)

                local = require_full_answer(BENCH, f"the local model on {w}x{h} '{instr}'",
                                            model.predict(rgb, depth, K, instr), model)
                same = remote.predict(rgb, depth, K, instr).token_ids == local.token_ids
                if not same:
                    raise RuntimeError(f"{BENCH}: the served model's tokens differ from the local model's on "
                                       f"{w}x{h} '{instr}': the two sides would not time the same work")
                med = in_worker_thread(lambda: interleaved_medians(
                    {"local": lambda: model.predict(rgb, depth, K, instr), "remote": ask}, repeats))
                res["frames"][f"{w}x{h}"] = {
                    "instruction": instr, "found": local.found, "tokens": len(local.token_ids),
                    "same_tokens": same, "request_mb": (rgb.nbytes + depth.nbytes) / 2**20,
                    "median_ms": med, "server_median_ms": statistics.median(server_ms),
                    "transport_median_ms": statistics.median(transport_ms),
                    "remote_over_local": med["remote"] / med["local"],
                    "overhead_ms": med["remote"] - med["local"]}
    finally:
        proc.terminate()
        proc.wait(30)
    write_result(out_dir, "bench_serving", res)
    print(f"\nPolicy-server benchmark ({res['model']}; {res['transport']}; median of {repeats}, interleaved)")
    print(f"  {'frame':<10}{'local ms':>10}{'remote ms':>11}{'server ms':>11}{'transport ms':>14}{'remote/local':>14}"
          f"{'overhead ms':>13}")
    for name, f in res["frames"].items():
        print(f"  {name:<10}{f['median_ms']['local']:>10.1f}{f['median_ms']['remote']:>11.1f}"
              f"{f['server_median_ms']:>11.1f}{f['transport_median_ms']:>14.1f}{f['remote_over_local']:>13.2f}x"
              f"{f['overhead_ms']:>13.1f}")
    return res


def main(argv=None) -> int:
    return bench_main(run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
