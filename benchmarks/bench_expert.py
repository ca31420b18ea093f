"""Action-expert benchmark: one chunk (prefix + ``num_steps`` Euler steps of the expert) as a
ratio to one backbone forward (``prefix_features``: the image + prompt prefix through the
backbone), and to the token head's full prediction, measured interleaved in one run on the
same inputs (ratios survive a noisy shared machine; absolute ms do not).

Model: ``checkpoints/expert`` when present, else a new expert (default ExpertConfig) on the
shipped demo backbone, else on a random default backbone: same sizes and work, so the ratio
is the same.

Input: a frame of the sim (seed 1000: its instruction, RGB-D, intrinsics and the robot's state),
so both heads answer with a motion. On a random frame the backbone's object verifier refuses
and both heads stop after the prefix: that measured a refusal (1.3x), not a chunk. Before
anything is timed, the chunk is checked to be a full one and the token head's answer to decode
every pose token; otherwise the benchmark stops with an error and writes nothing.

    python -m benchmarks.bench_expert --out bench_results
"""
from __future__ import annotations

import time
from pathlib import Path

import torch
from benchmarks.common import (bench_main, interleaved_medians, require_full_answer, require_full_chunk, sim_frame,
                               write_result)

REPO = Path(__file__).resolve().parent.parent
TARGET_RATIO = 2.0
BENCH = "bench_expert"


def _load():
    from posevla_core.policies.factory import load_policy
    from posevla_core.policies.flow.modeling import FlowPolicy
    from posevla_core.policies.small.configuration import PoseVLAConfig
    from posevla_core.policies.small.modeling import PoseVLA

    if (REPO / "checkpoints" / "expert" / "expert.safetensors").exists():
        return load_policy(REPO / "checkpoints" / "expert", device="cpu"), "checkpoints/expert"
    torch.manual_seed(0)
    demo = REPO / "checkpoints" / "demo"
    if (demo / "model.safetensors").exists():
        return FlowPolicy.attach(load_policy(demo, device="cpu")).eval(), "new expert on checkpoints/demo"
    return FlowPolicy.attach(PoseVLA(PoseVLAConfig())).eval(), "new expert on a random default backbone"


def run(out_dir: str | Path = "bench_results", repeats: int = 15) -> dict:
    model, source = _load()
    compile_s = compiled(model)
    rgb, depth, K, instr, state = sim_frame()
    batch = model.processor.collate([model.processor.make_example(rgb, depth, K, instr)])
    gen = torch.Generator().manual_seed(0)
    state = state if model.needs_state else None

    def backbone():
        with torch.no_grad():
            model.backbone.prefix_features(batch)

    def chunk():
        model.predict(rgb, depth, K, instr, generator=gen, state=state)

    def tokens():
        model.backbone.predict(rgb, depth, K, instr)

    require_full_chunk(BENCH, f"the chunk for '{instr}'", model.predict(rgb, depth, K, instr, state=state),
                       model.cfg.horizon)
    require_full_answer(BENCH, f"the token head on '{instr}'", model.backbone.predict(rgb, depth, K, instr),
                        model.backbone)
    fns = {"backbone_forward": backbone, "chunk": chunk, "token_head_predict": tokens}
    med = interleaved_medians(fns, repeats)
    cfg = model.cfg
    res = {"model": source, "horizon": cfg.horizon, "dt": cfg.dt, "num_steps": cfg.num_steps,
           "expert_parameters": sum(p.numel() for p in model.expert.parameters()),
           "threads": torch.get_num_threads(), "repeats": repeats, "median_ms": med,
           "chunk_over_backbone_forward": med["chunk"] / med["backbone_forward"],
           "chunk_over_token_predict": med["chunk"] / med["token_head_predict"],
           "target_chunk_over_backbone_forward": TARGET_RATIO, "instruction": instr,
           "full_answers": "chunk of horizon waypoints; all pose tokens decoded",
           "decoding": "static-compile (as policy_node)", "compile_s": compile_s}
    print(f"\nAction-expert benchmark ({source}; chunk of {cfg.horizon} x {cfg.dt} s, {cfg.num_steps} Euler steps, "
          f"{res['expert_parameters'] / 1e6:.2f} M expert params, {res['threads']} threads, median of {repeats}; "
          f"Euler steps compiled in {compile_s:.1f} s, as policy_node does)")
    for k, v in med.items():
        print(f"  {k:<24}{v:>10.1f} ms")
    print(f"  chunk / backbone forward  {res['chunk_over_backbone_forward']:.2f}x  (target <= {TARGET_RATIO:.0f}x)")
    print(f"  chunk / token-head predict {res['chunk_over_token_predict']:.2f}x")
    print(f"  sim frame (seed 1000) '{instr}': full chunk and all {model.backbone.tokenizer.seq_len} pose tokens decoded")
    v = res["vlm"] = run_vlm(repeats)
    write_result(out_dir, "bench_expert", res)
    print(f"\nFlow head on the PaliGemma prefix ({v['model']}; chunk of {v['horizon']}, {v['num_steps']} Euler steps)")
    print(f"  random weights: the <no_object> refusal is disabled, so every chunk is a full one")
    for k, val in v["median_ms"].items():
        print(f"  {k:<24}{val:>10.1f} ms")
    print(f"  chunk / prefix forward, preprocessing in both  {v['chunk_over_prefix_forward']:.2f}x  "
          f"(target <= {TARGET_RATIO:.0f}x)")
    print(f"  chunk / bare prefix forward                    {v['chunk_over_bare_prefix_forward']:.2f}x")
    return res


def run_vlm(repeats: int = 15) -> dict:
    """The same ratio for a new flow expert (default ExpertConfig) on the tiny random PaliGemma,
    what ``posevla train --model paligemma --head flow`` makes: one chunk (preprocess + one prefix
    forward + the expert's Euler steps) against one prefix forward (``prefix_features``) with the
    frame's preprocessing (the headline, as bench_model's VLM ratio) and without it (on the tiny
    model preprocessing a 640x480 frame costs half a prefix forward). Random
    weights refuse anything, so the backbone's ``<no_object>`` is forbidden (forbid_refusal) and
    the chunk checked to be a full one."""
    from benchmarks.common import forbid_refusal

    from posevla_core.policies.flow.modeling import FlowPolicy
    from posevla_core.policies.paligemma.modeling import PaliGemmaPoseVLA
    from posevla_core.policies.paligemma.random_init import random_paligemma

    torch.manual_seed(0)
    vlm, tok = random_paligemma("tiny")
    model = FlowPolicy.attach(forbid_refusal(PaliGemmaPoseVLA.from_vlm(vlm, tok))).eval()
    compile_s = compiled(model)
    rgb, depth, K, instr, state = sim_frame(width=640, height=480)
    state = state if model.needs_state else None
    batch = model.processor.collate([model.processor.make_example(rgb, depth, K, instr)])

    def prefix():
        with torch.no_grad():
            model.backbone.prefix_features(batch)

    def preprocess_and_prefix():
        p = model.processor
        with torch.no_grad():
            model.backbone.prefix_features(p.collate([p.make_example(rgb, depth, K, instr)]))

    require_full_chunk(BENCH, f"the PaliGemma flow chunk for '{instr}'",
                       model.predict(rgb, depth, K, instr, state=state), model.cfg.horizon)
    med = interleaved_medians({"prefix_forward": prefix, "preprocess+prefix_forward": preprocess_and_prefix,
                               "chunk": lambda: model.predict(rgb, depth, K, instr, state=state)}, repeats)
    return {"model": "tiny random PaliGemma + new flow expert", "refusal": "disabled (random weights)",
            "horizon": model.cfg.horizon, "num_steps": model.cfg.num_steps, "median_ms": med,
            # the chunk includes the 640x480 frame's preprocessing, as bench_model's VLM forward does
            "chunk_over_prefix_forward": med["chunk"] / med["preprocess+prefix_forward"],
            "chunk_over_bare_prefix_forward": med["chunk"] / med["prefix_forward"], "target": TARGET_RATIO,
            "decoding": "static-compile (as policy_node)", "compile_s": compile_s}


def compiled(model) -> float:
    """Seconds to compile the expert's Euler steps, as policy_node does at start (its ``decoding``
    parameter, default static-compile): the chunks timed are the ones a node computes."""
    t = time.perf_counter()
    model.set_decoding("static-compile")
    return time.perf_counter() - t


def main(argv=None) -> int:
    return bench_main(run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
