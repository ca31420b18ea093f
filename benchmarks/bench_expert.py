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

from pathlib import Path

import torch

from benchmarks.common import (bench_main, interleaved_medians, require_full_answer, require_full_chunk, sim_frame,
                               write_result)

REPO = Path(__file__).resolve().parent.parent
TARGET_RATIO = 2.0
BENCH = "bench_expert"


def _load():
    from posevla_core.config import PoseVLAConfig
    from posevla_core.expert import FlowPolicy
    from posevla_core.model import PoseVLA
    from posevla_core.policy import load_policy

    if (REPO / "checkpoints" / "expert" / "expert.safetensors").exists():
        return load_policy(REPO / "checkpoints" / "expert", device="cpu"), "checkpoints/expert"
    torch.manual_seed(0)
    demo = REPO / "checkpoints" / "demo"
    if (demo / "model.safetensors").exists():
        return FlowPolicy.attach(load_policy(demo, device="cpu")).eval(), "new expert on checkpoints/demo"
    return FlowPolicy.attach(PoseVLA(PoseVLAConfig())).eval(), "new expert on a random default backbone"


def run(out_dir: str | Path = "bench_results", repeats: int = 15) -> dict:
    model, source = _load()
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
           "full_answers": "chunk of horizon waypoints; all pose tokens decoded"}
    write_result(out_dir, "bench_expert", res)
    print(f"\nAction-expert benchmark ({source}; chunk of {cfg.horizon} x {cfg.dt} s, {cfg.num_steps} Euler steps, "
          f"{res['expert_parameters'] / 1e6:.2f} M expert params, {res['threads']} threads, median of {repeats})")
    for k, v in med.items():
        print(f"  {k:<24}{v:>10.1f} ms")
    print(f"  chunk / backbone forward  {res['chunk_over_backbone_forward']:.2f}x  (target <= {TARGET_RATIO:.0f}x)")
    print(f"  chunk / token-head predict {res['chunk_over_token_predict']:.2f}x")
    print(f"  sim frame (seed 1000) '{instr}': full chunk and all {model.backbone.tokenizer.seq_len} pose tokens decoded")
    return res


def main(argv=None) -> int:
    return bench_main(run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
