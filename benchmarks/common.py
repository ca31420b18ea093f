"""Helpers shared by the model benchmarks: interleaved timing (ratios measured in one run
survive a noisy shared machine), the result file and the `--out/--repeats` command line."""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np


def camera_frame(size: int = 224) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """A fixed random RGB-D frame (the sim camera's size and intrinsics) and an instruction."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    depth = rng.uniform(0.6, 1.4, (size, size)).astype(np.float32)
    c = (size - 1) / 2
    return rgb, depth, np.array([[220.0, 0, c], [0, 220.0, c], [0, 0, 1]]), "pick up the red cube"


def interleaved_medians(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median ms of each function, run round-robin ``repeats`` times after one warm-up each."""
    for f in fns.values():
        f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, f in fns.items():
            t = time.perf_counter()
            f()
            times[name].append((time.perf_counter() - t) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def write_result(out_dir: str | Path, name: str, res: dict) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(res, indent=2))
    return path


def bench_main(run: Callable[[str, int], dict], doc: str, argv=None) -> int:
    """``python -m benchmarks.<name> [--out DIR] [--repeats N]``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", default="bench_results", help="result directory")
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds (medians)")
    args = parser.parse_args(argv)
    run(args.out, args.repeats)
    return 0
