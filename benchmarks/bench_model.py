"""Model benchmark: what the KV cache buys, what the grammar constraint costs, tokens/s, and
the PaliGemma path's prediction time as a ratio to ONE forward pass over the same sequence.

All numbers come from one run on the same inputs, interleaved, so ratios are meaningful
even on a noisy shared machine. Model: the shipped demo checkpoint when present, else a
random model of the default config (same size and decode length). VLM path: the tiny
random PaliGemma (posevla_core.paligemma_random) with the default pose grammar.

    python -m benchmarks.bench_model --out bench_results
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch



def _load_model():
    from posevla_core.config import PoseVLAConfig
    from posevla_core.model import PoseVLA
    from posevla_core.policy import load_policy

    from posevla_core.paths import default_checkpoint

    ckpt = default_checkpoint()
    if (ckpt / "model.safetensors").exists():
        return load_policy(ckpt, device="cpu"), str(ckpt)
    torch.manual_seed(0)
    return PoseVLA(PoseVLAConfig()).eval(), "random default config"


def run(out_dir: str | Path = "bench_results", repeats: int = 15) -> dict:
    model, source = _load_model()
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)
    depth = rng.uniform(0.6, 1.4, (224, 224)).astype(np.float32)
    K = np.array([[220.0, 0, 111.5], [0, 220.0, 111.5], [0, 0, 1]])
    instr = "pick up the red cube"
    modes = {"cache+constrained": dict(use_cache=True, constrained=True),
             "cache+unconstrained": dict(use_cache=True, constrained=False),
             "no_cache+constrained": dict(use_cache=False, constrained=True)}
    for kw in modes.values():   # warm-up (also fills the instruction cache)
        model.predict(rgb, depth, K, instr, **kw)
    times: dict[str, list[float]] = {k: [] for k in modes}
    tokens = model.tokenizer.seq_len
    for _ in range(repeats):
        for name, kw in modes.items():
            t = time.perf_counter()
            model.predict(rgb, depth, K, instr, **kw)
            times[name].append((time.perf_counter() - t) * 1e3)
    med = {k: statistics.median(v) for k, v in times.items()}
    res = {
        "model": source, "parameters": model.num_parameters(), "tokens_per_prediction": tokens,
        "threads": torch.get_num_threads(), "repeats": repeats,
        "median_ms": med,
        "kv_cache_speedup": med["no_cache+constrained"] / med["cache+constrained"],
        "constraint_overhead_pct": 100.0 * (med["cache+constrained"] / med["cache+unconstrained"] - 1.0),
        "tokens_per_s": tokens / (med["cache+constrained"] / 1e3),
    }
    res["vlm"] = run_vlm(repeats)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_model.json").write_text(json.dumps(res, indent=2))
    print(f"\nModel benchmark ({source}, {res['parameters'] / 1e6:.2f} M params, {tokens} pose tokens, "
          f"{res['threads']} threads, median of {repeats})")
    print(f"  {'mode':<24}{'predict ms':>12}")
    for k, v in med.items():
        print(f"  {k:<24}{v:>12.1f}")
    print(f"  KV-cache speed-up          {res['kv_cache_speedup']:.2f}x")
    print(f"  constraint overhead        {res['constraint_overhead_pct']:+.1f} %  (goal <= 5 %)")
    print(f"  tokens/s (cache+constr.)   {res['tokens_per_s']:.0f}")
    v = res["vlm"]
    print(f"\nPaliGemma path ({v['model']}, {v['parameters'] / 1e6:.2f} M params, {v['sequence_tokens']} tokens: "
          f"{v['prefix_tokens']} prefix + {v['pose_tokens']} pose)")
    print(f"  predict (KV cache, grammar)   {v['predict_ms']:8.1f} ms")
    print(f"  one forward, same sequence    {v['forward_ms']:8.1f} ms")
    print(f"  predict / forward             {v['predict_over_forward']:.1f}x")
    return res


def run_vlm(repeats: int = 15) -> dict:
    """Prediction (preprocess + prefix + 57 cached decode steps) vs one teacher-forced forward
    pass over the same prefix + pose tokens (preprocess included in both), interleaved."""
    from posevla_core.paligemma import PaliGemmaPoseVLA
    from posevla_core.paligemma_random import random_paligemma
    from posevla_core.types import Pose, PoseTarget, Waypoint

    vlm, tok = random_paligemma("tiny")
    model = PaliGemmaPoseVLA.from_vlm(vlm, tok).eval()
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    depth = rng.uniform(0.6, 1.4, (480, 640)).astype(np.float32)
    K = np.array([[600.0, 0, 319.5], [0, 600.0, 239.5], [0, 0, 1]])
    instr = "pick up the red cube"
    pred = model.predict(rgb, depth, K, instr)
    wps = pred.waypoints or [Waypoint(Pose([0.0, 0.0, 0.8], [0, 0, 0, 1]), 1.0)] * model.cfg.tokens.num_waypoints
    target = PoseTarget(model.cfg.tokens.categories[0], (0.5, 0.5), Pose([0.0, 0.0, 0.8], [0, 0, 0, 1]), wps,
                        box_xyxy=(0.45, 0.45, 0.55, 0.55), size=np.full(3, 0.05))
    p = model.processor

    def forward():
        with torch.no_grad():
            model.compute_loss(p.collate([p.make_example(rgb, depth, K, instr, target)]))

    forward()
    times: dict[str, list[float]] = {"predict": [], "forward": []}
    for _ in range(repeats):
        for name, fn in (("predict", lambda: model.predict(rgb, depth, K, instr)), ("forward", forward)):
            t = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t) * 1e3)
    med = {k: statistics.median(v) for k, v in times.items()}
    prefix = len(p.prompt_ids(instr))
    return {"model": "tiny random PaliGemma", "parameters": model.num_parameters(), "prefix_tokens": prefix,
            "pose_tokens": model.tokenizer.seq_len, "sequence_tokens": prefix + model.tokenizer.seq_len,
            "predict_ms": med["predict"], "forward_ms": med["forward"],
            "predict_over_forward": med["predict"] / med["forward"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench_results")
    ap.add_argument("--repeats", type=int, default=15)
    a = ap.parse_args(argv)
    run(a.out, a.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
