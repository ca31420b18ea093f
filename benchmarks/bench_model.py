"""Model benchmark: what the KV cache buys, what the grammar constraint costs, tokens/s, and
the PaliGemma path's prediction time as a ratio to ONE forward pass over the same sequence.

All numbers come from one run on the same inputs, interleaved, so ratios are meaningful
even on a noisy shared machine. Model: the shipped demo checkpoint when present, else a
random model of the default config (same size and decode length). VLM path: the tiny
random PaliGemma (posevla_core.policies.paligemma.random_init) with the default pose grammar.

Input: a sim frame (benchmarks.common.sim_frame, seed 1000) on which the shipped checkpoint
finds the object and decodes every pose token; each mode's answer is checked to be that full
answer before anything is timed, and the benchmark stops with an error otherwise (on a random
frame the object verifier refuses after one step, and the times were those of a refusal).
Random weights (the fallback model, the tiny PaliGemma) have no trained answer and refuse
anything, so for them the ``<no_object>`` answer is forbidden at the first step
(benchmarks.common.forbid_refusal) and the table says so.

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
from benchmarks.common import forbid_refusal, require_full_answer, sim_frame

BENCH = "bench_model"


def _load_model():
    from posevla_core.paths import default_checkpoint
    from posevla_core.policies.factory import load_policy
    from posevla_core.policies.small.configuration import PoseVLAConfig
    from posevla_core.policies.small.modeling import PoseVLA

    ckpt = default_checkpoint()
    if (ckpt / "model.safetensors").exists():
        return load_policy(ckpt, device="cpu"), str(ckpt)
    torch.manual_seed(0)
    return forbid_refusal(PoseVLA(PoseVLAConfig()).eval()), "random default config, <no_object> forbidden"


def run(out_dir: str | Path = "bench_results", repeats: int = 15) -> dict:
    model, source = _load_model()
    rgb, depth, K, instr, _ = sim_frame()
    modes = {"cache+constrained": dict(use_cache=True, constrained=True, decoding="eager"),
             "cache+unconstrained": dict(use_cache=True, constrained=False, decoding="eager"),
             "no_cache+constrained": dict(use_cache=False, constrained=True),
             "static cache+constrained": dict(use_cache=True, constrained=True, decoding="static"),
             "static-compile+constrained": dict(use_cache=True, constrained=True, decoding="static-compile")}
    t = time.perf_counter()
    model.set_decoding("static-compile")        # what policy_node does at start (not timed below)
    compile_s = time.perf_counter() - t
    answers = {}
    for name, kw in modes.items():   # warm-up (also fills the instruction cache) and the full-answer check
        answers[name] = require_full_answer(BENCH, f"'{instr}' ({name})", model.predict(rgb, depth, K, instr, **kw),
                                            model, grammatical=kw["constrained"]).token_ids
    for name in ("static cache+constrained", "static-compile+constrained"):
        if answers[name] != answers["cache+constrained"]:
            raise RuntimeError(f"{BENCH}: {name} gave other tokens than the eager decoder: nothing written")
    forwards = small_forwards(model, rgb, depth, K, instr)
    times: dict[str, list[float]] = {k: [] for k in [*modes, *forwards]}
    decode: dict[str, list[float]] = {k: [] for k in ("cache+constrained", "static cache+constrained",
                                                      "static-compile+constrained")}
    tokens = model.tokenizer.seq_len
    for _ in range(repeats):
        for name, kw in modes.items():
            t = time.perf_counter()
            pred = model.predict(rgb, depth, K, instr, **kw)
            times[name].append((time.perf_counter() - t) * 1e3)
            if name in decode:
                decode[name].append(pred.timings_ms["decode"])
        for name, fn in forwards.items():
            t = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t) * 1e3)
    med = {k: statistics.median(v) for k, v in times.items()}
    fastest = med["static-compile+constrained"]
    res = {
        "model": source, "instruction": instr, "frame": "sim seed 1000, 224x224",
        "parameters": model.num_parameters(), "tokens_per_prediction": tokens,
        "threads": torch.get_num_threads(), "repeats": repeats,
        "median_ms": med,
        "kv_cache_speedup": med["no_cache+constrained"] / med["cache+constrained"],
        "constraint_overhead_pct": 100.0 * (med["cache+constrained"] / med["cache+unconstrained"] - 1.0),
        "tokens_per_s": tokens / (med["cache+constrained"] / 1e3),
        "static_over_eager_decode": statistics.median(decode["static cache+constrained"])
        / statistics.median(decode["cache+constrained"]),
        "compiled_over_eager_decode": statistics.median(decode["static-compile+constrained"])
        / statistics.median(decode["cache+constrained"]),
        "compile_warmup_s": compile_s,
        "compiled_predict_over_forward": fastest / med["forward (prefix + pose tokens)"],
        "compiled_predict_over_prefix_forward": fastest / med["forward (prefix only)"],
    }
    res["vlm"] = run_vlm(repeats)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_model.json").write_text(json.dumps(res, indent=2))
    print(f"\nModel benchmark ({source}, {res['parameters'] / 1e6:.2f} M params, {tokens} pose tokens, "
          f"{res['threads']} threads, median of {repeats})")
    print(f"  sim frame (seed 1000) '{instr}': object found, all {tokens} pose tokens decoded in every mode")
    print(f"  {'mode':<32}{'ms':>10}")
    for k, v in med.items():
        print(f"  {k:<32}{v:>10.1f}")
    print(f"  KV-cache speed-up          {res['kv_cache_speedup']:.2f}x")
    print(f"  constraint overhead        {res['constraint_overhead_pct']:+.1f} %  (goal <= 5 %)")
    print(f"  tokens/s (cache+constr.)   {res['tokens_per_s']:.0f}")
    print(f"  static / eager decode time {res['static_over_eager_decode']:.2f}  (same tokens; prefill + {tokens} steps)")
    print(f"  compiled / eager decode    {res['compiled_over_eager_decode']:.2f}  (same tokens; step compiled in "
          f"{compile_s:.1f} s before timing, as policy_node does at start)")
    print(f"  static-compile predict / one forward (prefix + {tokens} pose tokens) "
          f"{res['compiled_predict_over_forward']:.2f}x  (target <= 3x)")
    print(f"  static-compile predict / one forward (prefix only)          "
          f"{res['compiled_predict_over_prefix_forward']:.2f}x")
    v = res["vlm"]
    print(f"\nPaliGemma path ({v['model']}, {v['parameters'] / 1e6:.2f} M params, {v['sequence_tokens']} tokens: "
          f"{v['prefix_tokens']} prefix + {v['pose_tokens']} pose)")
    print(f"  random weights: the <no_object> refusal is disabled, so all {v['pose_tokens']} pose tokens decode")
    print(f"  predict (KV cache, grammar)   {v['predict_ms']:8.1f} ms")
    print(f"  one forward, same sequence    {v['forward_ms']:8.1f} ms")
    print(f"  predict / forward             {v['predict_over_forward']:.1f}x")
    return res


def small_forwards(model, rgb, depth, K, instr) -> dict:
    """The small model's one-forward references, preprocessing included as in a prediction:
    the teacher-forced forward over the prefix and the model's own full answer (the pose tokens a
    prediction decodes one by one, here all in one pass: ``compute_loss``), and the prefix-only
    forward an action expert reads (``prefix_features``)."""
    from posevla_core.policies.base import eval_mode
    from posevla_core.poses import PoseTarget

    pred = model.predict(rgb, depth, K, instr, decoding="eager")
    target = PoseTarget(pred.category, pred.box_uv, pred.object_pose, pred.waypoints, box_xyxy=pred.box_xyxy,
                        size=pred.size)

    def full():
        with torch.no_grad(), eval_mode(model):
            model.compute_loss(model.collate([model.make_example(rgb, depth, K, instr, target)]))

    def prefix():
        with torch.no_grad(), eval_mode(model):
            model.prefix_features(model.collate([model.make_example(rgb, depth, K, instr)]))

    return {"forward (prefix + pose tokens)": full, "forward (prefix only)": prefix}


def run_vlm(repeats: int = 15) -> dict:
    """Prediction (preprocess + prefix + 57 cached decode steps) vs one teacher-forced forward
    pass over the same prefix + pose tokens (preprocess included in both), interleaved. The
    random VLM refuses anything, so its ``<no_object>`` answer is forbidden (forbid_refusal)
    and the prediction checked to decode every pose token."""
    from posevla_core.policies.paligemma.modeling import PaliGemmaPoseVLA
    from posevla_core.policies.paligemma.random_init import random_paligemma
    from posevla_core.poses import Pose, PoseTarget

    vlm, tok = random_paligemma("tiny")
    model = forbid_refusal(PaliGemmaPoseVLA.from_vlm(vlm, tok).eval())
    rgb, depth, K, instr, _ = sim_frame(width=640, height=480)
    pred = require_full_answer(BENCH, f"tiny random PaliGemma on '{instr}'", model.predict(rgb, depth, K, instr), model)
    wps = pred.waypoints
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
    return {"model": "tiny random PaliGemma", "refusal": "disabled (random weights)", "instruction": instr,
            "parameters": model.num_parameters(), "prefix_tokens": prefix,
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
