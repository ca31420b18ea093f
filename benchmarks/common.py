"""Helpers shared by the model benchmarks: the sim frame they time, the check that a timed
prediction is a full answer (not a refusal), interleaved timing (ratios measured in one run
survive a noisy shared machine), the result file and the `--out/--repeats` command line."""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np

SIM_SEED = 1000


def sim_frame(seed: int = SIM_SEED, width: int = 224, height: int = 224
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str, dict]:
    """One frame of the sim's pick episode ``seed`` at its start: RGB, depth, K, instruction and
    ``robot_state``. The shipped checkpoint finds the instructed object here and decodes every
    pose token; on a random frame its object verifier refuses after one step, so a timing of
    that frame measures a refusal, not what a user runs."""
    from posevla_core.policies.flow.codec import robot_state
    from posevla_core.sim.mujoco.env import SimEnv

    with SimEnv(width=width, height=height) as env:
        spec = env.reset(seed, "pick")
        rgb, depth, K = env.render()
        state = robot_state(env.ee_pose(), env.gripper_opening(), env.camera_pose_in_base())
    return rgb, depth, K, spec.instruction, state


def forbid_refusal(model):
    """Forbid ``<no_object>`` at the first decoding step of a token head (the small model or a
    PaliGemma one, whose pose ids are mapped). For RANDOM weights only, which have no trained
    answer and refuse anything: with the refusal forbidden every pose token is decoded, so a
    timing measures a full prediction. Never for a trained model a user runs."""
    from posevla_core.tokens.grammar import NO_OBJECT

    nid = model.id_map[NO_OBJECT] if hasattr(model, "id_map") else NO_OBJECT
    model.step_bias[:, 0, nid] = float("-inf")
    return model


def require_full_answer(bench: str, what: str, pred, model, grammatical: bool = True):
    """``pred`` unchanged when the token head found the object and decoded all
    ``model.tokenizer.seq_len`` pose tokens (and, with ``grammatical``, a valid answer); else
    RuntimeError, so no benchmark prints or writes a time of a refusal as a prediction's."""
    n, want = len(pred.token_ids), model.tokenizer.seq_len
    if pred.found and n == want and (pred.valid or not grammatical):
        return pred
    raise RuntimeError(f"{bench}: {what} decoded {n} of {want} pose tokens (object found: {pred.found}, "
                       f"valid: {pred.valid}); its time would measure a refusal, not a prediction: nothing written")


def require_full_chunk(bench: str, what: str, pred, horizon: int):
    """``pred`` unchanged when the flow head found the object and returned a full chunk of
    ``horizon`` waypoints; else RuntimeError (see ``require_full_answer``)."""
    n = len(pred.waypoints or [])
    if pred.found and pred.valid and n == horizon:
        return pred
    raise RuntimeError(f"{bench}: {what} returned {n} of {horizon} chunk waypoints (object found: {pred.found}, "
                       f"valid: {pred.valid}); its time would measure a refusal, not a chunk: nothing written")


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
