"""`make bench-gpu`: the PaliGemma path at its real size, on one CUDA GPU, in one script.

Builds a model of paligemma-3b-pt-224's shape (SigLIP-So400m/14 at 224 px + Gemma-2B,
257216-row vocabulary) with RANDOM weights in bf16 (posevla_core.policies.paligemma.random_init: no
download, no real weights needed), adds the pose tokens and the geometry prior, then:
  1. a few LoRA training steps (peft; frozen vision tower, activation checkpointing) on
     synthetic 640x480 RGB-D frames: step time and peak memory;
  2. prediction (prefix + 57 grammar-constrained pose tokens with the KV cache): latency,
     tokens/s, the batch-8 throughput, and the same prediction on the static-cache path
     compiled into CUDA graphs (decoding="static-compile": latency, first-call compile time,
     whether its tokens are the eager ones);
  3. the flow head (a new action expert on that backbone): one chunk's latency (median, p90) with
     its Euler steps compiled, chunks/s at batch 1 and at the batch size, peak memory;
and writes bench_results/bench_gpu.json. Random weights make the predictions meaningless;
speed and memory are those of the real model. Random weights also answer ``<no_object>`` to
anything, which stops decoding after one token: that answer is forbidden at the first step
(benchmarks.common.forbid_refusal) and every timed prediction is checked to decode all pose
tokens, else the benchmark stops with an error. Without CUDA it stops with one line.

    python -m benchmarks.bench_gpu --out bench_results
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from benchmarks.common import forbid_refusal, require_full_answer

BENCH = "bench_gpu"

def frames(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    K = np.array([[600.0, 0, 319.5], [0, 600.0, 239.5], [0, 0, 1]])
    return [{"rgb": rng.integers(0, 255, (480, 640, 3), dtype=np.uint8),
             "depth": rng.uniform(0.4, 1.6, (480, 640)).astype(np.float32), "K": K,
             "instruction": "pick up the red cube"} for _ in range(n)]


def run(out_dir: str | Path = "bench_results", train_steps: int = 5, batch: int = 8, repeats: int = 10,
        lora_rank: int = 16, shape: str = "3b", device: str = "cuda") -> dict:
    """``shape``/``device``: "tiny"/"cpu" is the CPU check of this script (test_bench_gpu.py)."""
    import torch

    from posevla_core.policies.paligemma.configuration import VLMConfig
    from posevla_core.policies.paligemma.modeling import PaliGemmaPoseVLA
    from posevla_core.policies.paligemma.random_init import random_paligemma
    from posevla_core.poses import Pose, PoseTarget, Waypoint

    try:
        import peft  # noqa: F401
    except ImportError:
        print("[bench-gpu] peft is not installed: full fine-tuning of the language model instead of LoRA")
        lora_rank = 0
    dev = torch.device(device)
    cuda = dev.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def peak_gib() -> float:
        return torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")

    def reset_peak():
        if cuda:
            torch.cuda.reset_peak_memory_stats()

    dtype = torch.bfloat16 if cuda else torch.float32      # bf16 matmuls on a CPU are only slow
    t0 = time.perf_counter()
    vlm, tok = random_paligemma(shape, device=device, dtype=dtype)
    cfg = VLMConfig(lora_rank=lora_rank, freeze_vision=True, gradient_checkpointing=True)
    model = PaliGemmaPoseVLA.from_vlm(vlm, tok, cfg).to(dev, dtype)
    build_s = time.perf_counter() - t0
    res = {"device": torch.cuda.get_device_name(0) if cuda else device, "shape": shape, "parameters": model.num_parameters(),
           "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
           "dtype": str(dtype).replace("torch.", ""), "lora_rank": lora_rank, "build_s": build_s}

    # 1. training steps
    p = model.processor
    pose = Pose([0.05, -0.02, 0.7], [0, 0, 0, 1])
    tgt = PoseTarget(cfg.tokens.categories[0], (0.4, 0.6), pose, [Waypoint(pose, 1.0)] * cfg.tokens.num_waypoints,
                     box_xyxy=(0.35, 0.55, 0.45, 0.65), size=np.full(3, 0.05))
    data = frames(batch)
    rng = np.random.default_rng(0)
    b = p.collate([p.make_example(f["rgb"], f["depth"], f["K"], f["instruction"], tgt, rng=rng) for f in data])
    opt = torch.optim.AdamW(model.param_groups(0.01), lr=1e-4)
    model.train()
    reset_peak()
    step_ms, losses = [], []
    for _ in range(train_steps):
        sync()
        t = time.perf_counter()
        loss, _ = model.compute_loss(b)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        step_ms.append((time.perf_counter() - t) * 1e3)
        losses.append(float(loss.detach()))
    res["train"] = {"batch": batch, "steps": train_steps, "step_ms_median": statistics.median(step_ms[1:] or step_ms),
                    "losses": losses, "peak_memory_gib": peak_gib()}
    del opt
    model.zero_grad(set_to_none=True)
    if cuda:
        torch.cuda.empty_cache()

    # 2. prediction
    model.eval()
    forbid_refusal(model)
    f = data[0]
    reset_peak()
    require_full_answer(BENCH, "the random PaliGemma's prediction", model.predict(f["rgb"], f["depth"], f["K"],
                                                                                   f["instruction"]), model)
    lat = []
    for _ in range(repeats):
        t = time.perf_counter()
        model.predict(f["rgb"], f["depth"], f["K"], f["instruction"])
        lat.append((time.perf_counter() - t) * 1e3)
    # the static-cache path (decoding.static_greedy): compiled into CUDA graphs on CUDA, eager on a CPU
    static = "static-compile" if cuda else "static"
    t = time.perf_counter()
    first = model.predict(f["rgb"], f["depth"], f["K"], f["instruction"], decoding=static)
    warm_s = time.perf_counter() - t
    same = first.token_ids == model.predict(f["rgb"], f["depth"], f["K"], f["instruction"]).token_ids
    lat_static = []
    for _ in range(repeats):
        t = time.perf_counter()
        model.predict(f["rgb"], f["depth"], f["K"], f["instruction"], decoding=static)
        lat_static.append((time.perf_counter() - t) * 1e3)
    t = time.perf_counter()
    preds = model.predict_batch(data)
    batch_ms = (time.perf_counter() - t) * 1e3
    for i, pred in enumerate(preds):
        require_full_answer(BENCH, f"row {i} of the random PaliGemma's batch prediction", pred, model)
    n_tok = model.tokenizer.seq_len
    med = statistics.median(lat)
    res["predict"] = {"latency_ms_median": med, "latency_ms_p90": float(np.percentile(lat, 90)),
                      "pose_tokens": n_tok, "refusal": "disabled (random weights)", "tokens_per_s": n_tok / (med / 1e3),
                      f"batch{batch}_ms": batch_ms, f"batch{batch}_tokens_per_s": batch * n_tok / (batch_ms / 1e3),
                      "peak_memory_gib": peak_gib(),
                      "static": {"decoding": static, "latency_ms_median": statistics.median(lat_static),
                                 "first_call_s": warm_s, "same_tokens_as_eager": same}}
    res["flow"] = flow_head(model, data, repeats, "static-compile" if cuda else "static", sync, reset_peak, peak_gib)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_gpu.json").write_text(json.dumps(res, indent=2))
    print(f"\nGPU benchmark: PaliGemma-{shape}-shaped Pose-VLA, random {res['dtype']} weights, on {res['device']}")
    print(f"  parameters                 {res['parameters'] / 1e9:.2f} B ({res['trainable_parameters'] / 1e6:.1f} M trainable)")
    print(f"  train step (batch {batch})      {res['train']['step_ms_median']:.0f} ms, peak "
          f"{res['train']['peak_memory_gib']:.1f} GiB, losses {[round(x, 2) for x in losses]}")
    print("  random weights: the <no_object> refusal is disabled, so all pose tokens decode")
    print(f"  predict latency            {med:.0f} ms median ({n_tok} pose tokens, {res['predict']['tokens_per_s']:.0f} tok/s)")
    print(f"  predict, {static:<15}   {res['predict']['static']['latency_ms_median']:.0f} ms median (first call "
          f"{warm_s:.1f} s), same tokens as eager: {same}")
    print(f"  predict batch {batch}            {batch_ms:.0f} ms ({res['predict'][f'batch{batch}_tokens_per_s']:.0f} tok/s), "
          f"peak {res['predict']['peak_memory_gib']:.1f} GiB")
    fl = res["flow"]
    print(f"  flow chunk ({fl['horizon']} actions, {fl['decoding']}) {fl['latency_ms_median']:.0f} ms median, p90 "
          f"{fl['latency_ms_p90']:.0f} ms (first call {fl['first_call_s']:.1f} s); batch {batch}: "
          f"{fl[f'batch{batch}_chunks_per_s']:.1f} chunks/s, peak {fl['peak_memory_gib']:.1f} GiB")
    return res


def flow_head(model, data: list[dict], repeats: int, decoding: str, sync, reset_peak, peak_gib) -> dict:
    """The flow head on the same backbone (a new default expert without proprioception, what
    ``posevla train --model paligemma --head flow --no-state`` makes): one chunk's latency
    (one prefix forward + 10 Euler steps, compiled as policy_node runs them on CUDA) and the
    chunks/s of a batch. The backbone's refusal stays forbidden, so every chunk is a full one."""
    from benchmarks.common import require_full_chunk

    from posevla_core.policies.flow.modeling import FlowPolicy

    flow = FlowPolicy.attach(model, {"state": False}).to(model.device).eval()
    f = data[0]
    t = time.perf_counter()
    flow.set_decoding(decoding)
    require_full_chunk(BENCH, "the random PaliGemma's flow chunk",
                       flow.predict(f["rgb"], f["depth"], f["K"], f["instruction"]), flow.cfg.horizon)
    sync()
    first_s = time.perf_counter() - t
    reset_peak()
    lat = []
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        flow.predict(f["rgb"], f["depth"], f["K"], f["instruction"])
        sync()
        lat.append((time.perf_counter() - t) * 1e3)
    t = time.perf_counter()
    chunks = flow.predict_batch(data)
    sync()
    batch_s = time.perf_counter() - t
    for i, c in enumerate(chunks):
        require_full_chunk(BENCH, f"row {i} of the flow head's batch", c, flow.cfg.horizon)
    return {"horizon": flow.cfg.horizon, "num_steps": flow.cfg.num_steps, "decoding": decoding,
            "latency_ms_median": statistics.median(lat), "latency_ms_p90": float(np.percentile(lat, 90)),
            "first_call_s": first_s, f"batch{len(data)}_chunks_per_s": len(data) / batch_s,
            "chunks_per_s": 1e3 / statistics.median(lat), "peak_memory_gib": peak_gib()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench_results")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=10)
    a = ap.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("[bench-gpu] no CUDA device: this benchmark needs an NVIDIA GPU (about 40 GiB for batch 8); "
              "nothing was measured", file=sys.stderr)
        return 1
    run(a.out, a.steps, a.batch, a.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
