"""One trainer for the three Pose-VLA stages.

Why one module: one Trainer class (setup, the loop, exact resume, checkpoints) shared by
every stage and every backbone.

The loop is deliberately plain (nanoGPT-like) and runs under HF ``accelerate``: the same code
trains on a laptop CPU, on one GPU with bf16 autocast, or with ``accelerate launch`` on many
processes (DDP, or FSDP via config/accelerate/fsdp.yaml).

Determinism and exact resume. The batch of step ``s`` is a pure function of (seed, s): the
sample indices come from a per-epoch permutation seeded with (seed, epoch) and the
augmentation of each item from (seed, s, index). A resume therefore needs only the weights,
the optimizer and scheduler state and the step number (``out/resume``), and an interrupted
run continues the very same loss curve.

Any backbone of the model contract (policies/base.py) trains here: the small model or PaliGemma
(``architecture`` + ``base``), from scratch/base or from an ``init`` checkpoint.

Outputs in ``out/``: the model (``config.json`` + ``model.safetensors``, loadable with
``policy.load_policy``), ``train_config.json``, ``metrics.jsonl`` (one JSON per log /
eval), ``curves.png`` and ``offline_metrics.json`` (validation metrics of the final model).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, load_model
from tqdm.auto import tqdm

from posevla_core.data.augment import AugmentConfig, color_jitter, random_crop_resize
from posevla_core.data.shards import Sample
from posevla_core.policies.base import PosePolicy
from posevla_core.policies.factory import load_policy, policy_class
from posevla_core.policies.flow.modeling import FlowPolicy
from posevla_core.policies.base import tied_names
from posevla_core.policies.base import IGNORE
from posevla_core.train.config import TrainConfig
from posevla_core.train.metrics import aggregate, format_table, sample_metrics
from posevla_core.train.plots import plot_curves

RESUME_DIR = "resume"


class Interrupted(RuntimeError):
    """Raised by ``stop_at`` (tests) to emulate a killed run after a checkpoint."""


def split_indices(n: int, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Every k-th sample is validation (deterministic, spread over the whole dataset)."""
    if n < 2 or val_fraction <= 0:
        return np.arange(n), np.arange(0)
    k = max(2, int(round(1.0 / val_fraction)))
    idx = np.arange(n)
    return idx[idx % k != k - 1], idx[idx % k == k - 1]


def batch_indices(train_idx: np.ndarray, step: int, batch_size: int, seed: int) -> np.ndarray:
    """Global batch of ``step``: consecutive slices of per-epoch seeded permutations."""
    n = len(train_idx)
    out = []
    pos = step * batch_size
    while len(out) < batch_size:
        epoch, off = divmod(pos, n)
        perm = np.random.default_rng([seed, epoch]).permutation(n)
        take = min(batch_size - len(out), n - off)
        out.extend(perm[off:off + take])
        pos += take
    return train_idx[np.asarray(out)]


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup then cosine decay to lr * min_lr_ratio (as a multiplier of cfg.lr)."""
    if step < cfg.warmup_steps:
        return (step + 1) / max(1, cfg.warmup_steps)
    t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def make_item(model: PosePolicy, s: Sample, rng: np.random.Generator | None, cfg: TrainConfig) -> dict:
    """Sample -> model example (augmented when ``rng`` is given)."""
    rgb, depth, K, target = s.rgb, s.depth, s.K, s.target
    if rng is not None:
        rgb, depth, K, target = random_crop_resize(rng, rgb, depth, K, target, AugmentConfig())
        rgb = color_jitter(rng, rgb)
        if cfg.depth_dropout > 0 and rng.random() < cfg.depth_dropout:
            depth = None
    views = [dict(v) for v in s.views or []]
    if rng is not None:     # each extra camera: its own crop, jitter and depth dropout (no target in its frame)
        for v in views:
            v["rgb"], v["depth"], v["K"], _ = random_crop_resize(rng, v["rgb"], v.get("depth"), v["K"], None)
            v["rgb"] = color_jitter(rng, v["rgb"])
            if cfg.depth_dropout > 0 and rng.random() < cfg.depth_dropout:
                v["depth"] = None
    ex = model.processor.make_example(rgb, depth, K, s.instruction, target, rng=rng,
                                      **({"views": views} if views else {}))
    if s.chunk is not None:          # flow head: the action chunk (camera/base frame, unchanged by the crop)
        ex["chunk"], ex["state"] = s.chunk, s.state
    if not s.supervise_grounding:
        ex["labels"][: model.tokenizer.num_grounding_steps] = IGNORE
    return ex


CLIP_GROUPS = ("box", "object_position", "object_size", "waypoint_position")
CLIP_WARN = 0.01             # a group with more clipped targets than this gets a WARNING


def _clip_group(field: str) -> str | None:
    """The group of a clipped field name of ``PoseTokenizer.encode`` (box.x1 -> box, object.sx
    -> object_size, object.z -> object_position, wp3.y -> waypoint_position; None for others,
    e.g. "instances": a detect answer with more instances than the grammar holds)."""
    head, _, tail = field.partition(".")
    if head == "box":
        return "box"
    if head == "object":
        return "object_size" if tail.startswith("s") else "object_position"
    return "waypoint_position" if head.startswith("wp") and head[2:].isdigit() else None


def clipped_fractions(model: PosePolicy, samples: list[Sample], cfg: TrainConfig, progress: bool = False) -> dict:
    """Which supervised targets the tokenizer clips into an edge bin, over ``samples``: the
    fraction of targets with a clipped field per group (box, object position, object size,
    waypoint position), after the model's own image mapping (``make_item`` unaugmented, the
    labels the model trains on), plus the most clipped fields. A group counts the targets that
    supervise it (grounding groups: found objects of samples that supervise grounding;
    waypoints: targets with waypoints)."""
    n = dict.fromkeys(CLIP_GROUPS, 0)
    hit = dict.fromkeys(CLIP_GROUPS, 0)
    fields: dict[str, int] = {}
    for s in tqdm(samples, desc="clipped targets", disable=not progress, leave=False):
        t = s.target
        if not t.found:
            continue
        grounding = s.supervise_grounding
        for g in ("box", "object_position", "object_size"):
            n[g] += grounding
        n["waypoint_position"] += bool(t.waypoints)
        clipped = make_item(model, s, None, cfg).get("clipped", [])
        groups = set()
        for f in clipped:
            g = _clip_group(f)
            if g is None or (g != "waypoint_position" and not grounding):
                continue                      # not supervised: its tokens are IGNORE
            groups.add(g)
            fields[f] = fields.get(f, 0) + 1
        for g in groups:
            hit[g] += 1
    out = {f"clipped/{g}": (hit[g] / n[g] if n[g] else 0.0) for g in CLIP_GROUPS}
    out.update({f"clipped/{g}_targets": n[g] for g in CLIP_GROUPS})
    out["clipped/top_fields"] = dict(sorted(fields.items(), key=lambda kv: -kv[1])[:6])
    return out


def clipped_report(stats: dict) -> tuple[str, list[str]]:
    """One summary line and a WARNING line per group above ``CLIP_WARN``."""
    line = "clipped targets: " + ", ".join(
        f"{g.replace('_', ' ')} {100 * stats[f'clipped/{g}']:.1f} % of {stats[f'clipped/{g}_targets']}"
        for g in CLIP_GROUPS)
    warns = [f"WARNING: {100 * stats[f'clipped/{g}']:.1f} % of the {g.replace('_', ' ')} targets lie outside the "
             f"token bins and are clipped to the edge bin (most clipped fields: {stats['clipped/top_fields']}); "
             f"fit the bins to this data (posevla fit-bins, then train --bins)"
             for g in CLIP_GROUPS if stats[f"clipped/{g}"] > CLIP_WARN]
    return line, warns


def fsdp_on_cpu(acc, mixed_precision: str) -> bool:
    """Under an FSDP launch config (the launcher sets ACCELERATE_USE_FSDP) on a machine without
    an accelerator, make the run FSDP. accelerate 1.15 enables FSDP only for accelerator devices
    and otherwise runs the processes as plain DDP over gloo (MULTI_CPU) without a word; torch's
    FSDP2 itself shards over gloo on CPU, so the state is switched to FSDP with the launcher's
    plugin (its wrap policy, version and state-dict settings). True when it switched."""

    # accelerate: optional (the train extra), only distributed training needs it
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    if acc.distributed_type != DistributedType.MULTI_CPU or os.environ.get("ACCELERATE_USE_FSDP", "").lower() != "true":
        return False
    plugin = FullyShardedDataParallelPlugin()
    if mixed_precision != "no":
        plugin.set_mixed_precision(mixed_precision)
    acc.state.fsdp_plugin = plugin
    # both shared states, as AcceleratorState does itself: every new AcceleratorState() copies PartialState's
    acc.state.distributed_type = PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    return True


class Trainer:
    def __init__(self, cfg: TrainConfig, train_samples: list[Sample], val_samples: list[Sample],
                 out_dir: str | Path, init: str | Path | None = None, progress: bool = True) -> None:
        # accelerate: optional (the train extra), only distributed training needs it
        from accelerate import Accelerator
        from accelerate.utils import DataLoaderConfiguration, DistributedType, set_seed

        self.cfg, self.out = cfg, Path(out_dir)
        mp = cfg.mixed_precision
        if mp == "auto":
            mp = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
        # split_batches: batch_size is the global batch, so the prepared LR scheduler steps once per
        # step (by default accelerate steps it once per process and the schedule runs N times too fast)
        self.acc = Accelerator(mixed_precision=mp, cpu=not torch.cuda.is_available(),
                               dataloader_config=DataLoaderConfiguration(split_batches=True))
        fsdp_on_cpu(self.acc, mp)
        self.fsdp = self.acc.distributed_type == DistributedType.FSDP
        set_seed(cfg.seed)
        self.train_samples, self.val_samples = train_samples, val_samples
        if init:
            model = load_policy(init, device="cpu").train()
        else:
            model = policy_class(cfg.architecture).build(cfg.model, cfg.base)
        if cfg.head == "flow" and getattr(model, "head", "tokens") != "flow":   # a new action expert

            model = FlowPolicy.attach(model, cfg.expert, [s.chunk for s in train_samples if s.chunk is not None])
        self.raw = model
        cams = {1 + len(s.views or []) for s in (*train_samples, *val_samples)}
        if max(cams) > model.max_cameras or len(cams) > 1:
            raise ValueError(f"the data holds samples with {sorted(cams)} cameras; a {model.architecture} model takes "
                             f"1..{model.max_cameras}, the same number in every sample (a second camera: "
                             f"--model paligemma)")
        self.prefix_cache = None
        if cfg.cache_prefix:     # frozen backbone: its prefix of every training sample, computed once
            self.prefix_cache = model.cache_prefixes(
                lambda idx: model.processor.collate([make_item(model, train_samples[i], None, cfg) for i in idx]),
                len(train_samples), progress=progress)
        opt = torch.optim.AdamW(model.param_groups(cfg.weight_decay), lr=cfg.lr, betas=cfg.betas)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(s, cfg))
        self.model, self.opt, self.sched = self.acc.prepare(model, opt, sched)
        if self.fsdp:          # how many modules FSDP sharded on their own (blocks, embeddings, the root)
            # torch.distributed: only FSDP runs need it
            from torch.distributed.fsdp import FSDPModule

            self.fsdp_units = sum(isinstance(m, FSDPModule) for m in self.model.modules())
        self.raw.to(self.acc.device)
        self.step = 0
        self.progress = progress and self.acc.is_main_process
        self.train_idx = np.arange(len(train_samples))

    # ---- checkpoints
    def save_resume(self) -> None:
        state = self.acc.get_state_dict(self.model)   # collective under FSDP: every process calls it
        if self.fsdp:        # the optimizer state is sharded too: gathered (a collective), keyed by parameter name
            # torch.distributed: only FSDP runs need it
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

            opt_state = {"optimizer_full": get_optimizer_state_dict(
                self.model, self.opt, options=StateDictOptions(full_state_dict=True, cpu_offload=True))}
        else:
            opt_state = {"optimizer": self.opt.state_dict()}
        if not self.acc.is_main_process:
            return
        d = self.out / RESUME_DIR
        tmp = self.out / (RESUME_DIR + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        self.raw.save_pretrained(tmp, state_dict=state)
        torch.save({**opt_state, "scheduler": self.sched.state_dict(), "step": self.step}, tmp / "train_state.pt")
        (tmp / "train_config.json").write_text(json.dumps(self.cfg.to_dict(), indent=1))
        shutil.rmtree(d, ignore_errors=True)
        tmp.rename(d)

    def try_resume(self) -> bool:
        d = self.out / RESUME_DIR
        if not (d / "train_state.pt").is_file():
            return False

        st = torch.load(d / "train_state.pt", map_location="cpu", weights_only=True)
        if ("optimizer_full" in st) != self.fsdp:
            saved, now = ("an FSDP", "not") if not self.fsdp else ("a non-FSDP", "")
            raise ValueError(f"{d} was saved by {saved} run and this run is {now} FSDP: resume under the same "
                             f"launch config, or start over with --no-resume".replace("  ", " "))
        model = self.acc.unwrap_model(self.model)
        if self.fsdp:
            missing, unexpected = self._load_sharded(d, st["optimizer_full"])
        elif hasattr(model, "load_weights"):    # a head with its own weights file (expert.FlowPolicy)
            missing, unexpected = model.load_weights(d)
        else:
            missing, unexpected = load_model(model, str(d / "model.safetensors"), strict=False)
        if missing or unexpected:
            raise ValueError(f"{d} does not match the model being trained: missing {sorted(missing)[:5]}, "
                             f"unexpected {sorted(unexpected)[:5]}")
        if not self.fsdp:
            self.opt.load_state_dict(st["optimizer"])
        self.sched.load_state_dict(st["scheduler"])
        self.step = int(st["step"])
        return True

    def _load_sharded(self, d: Path, optimizer_state: dict) -> tuple[list, list]:
        """FSDP resume: the full weights of ``d`` (tied names restored) and the full optimizer
        state, each process keeping its shards. Returns (missing, unexpected) weight names."""
        # torch.distributed: only FSDP runs need it
        from torch.distributed.checkpoint.state_dict import (StateDictOptions, set_model_state_dict,
                                                             set_optimizer_state_dict)

        if hasattr(self.raw, "load_weights"):
            raise ValueError("resuming a flow-head run under FSDP is not supported; rerun with --no-resume")

        full = load_file(str(d / "model.safetensors"))
        for name, kept in tied_names(self.raw).items():      # stored once, loaded under every name
            if kept in full and name not in full:
                full[name] = full[kept]
        opts = StateDictOptions(full_state_dict=True, strict=False)
        keys = set_model_state_dict(self.model, full, options=opts)
        set_optimizer_state_dict(self.model, self.opt, optimizer_state, options=opts)
        return keys.missing_keys, keys.unexpected_keys

    # ---- one step
    def batch_at(self, step: int) -> dict:
        idx = batch_indices(self.train_idx, step, self.cfg.batch_size, self.cfg.seed)
        mine = idx[self.acc.process_index::self.acc.num_processes]
        if self.prefix_cache is not None:
            return self.raw.cached_batch(self.prefix_cache, mine, [self.train_samples[i].chunk for i in mine],
                                         [self.train_samples[i].state for i in mine])
        rngs = [np.random.default_rng([self.cfg.seed, step, int(i)]) if self.cfg.augment else None for i in mine]
        return self.raw.processor.collate([make_item(self.raw, self.train_samples[i], r, self.cfg) for i, r in zip(mine, rngs)])

    def train_step(self) -> dict:
        self.model.train()
        batch = self.batch_at(self.step)
        with self.acc.autocast():
            loss, info = self.model(batch)
        self.acc.backward(loss)
        if self.fsdp and hasattr(self.raw, "mask_frozen_grads"):
            self.raw.mask_frozen_grads()
        gn = self.acc.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip) if self.cfg.grad_clip > 0 else None
        self.opt.step()
        self.sched.step()
        self.opt.zero_grad(set_to_none=True)
        self.step += 1
        loss_all = self.acc.reduce(loss.detach().float(), reduction="mean")
        out = {"step": self.step, "loss": float(loss_all), "lr": float(self.sched.get_last_lr()[0]),
               **{k: v for k, v in info.items() if k != "loss"}}
        if gn is not None:
            out["grad_norm"] = float(gn)
        return out

    # ---- evaluation
    @torch.no_grad()
    def evaluate(self, samples: list[Sample] | None = None, limit: int | None = None,
                 model: PosePolicy | None = None) -> dict:
        """Validation loss and metrics of ``model`` (default: the one training; under FSDP pass a
        full copy, ``eval_copy``: a sharded model's forward is a collective of all processes)."""
        samples = self.val_samples if samples is None else samples
        samples = samples[: (limit or self.cfg.max_val_samples)]
        if not samples:
            return {}
        model = model if model is not None else self.acc.unwrap_model(self.model)
        model.eval()
        losses, rows = [], []
        metrics_of = getattr(model, "sample_metrics", None)   # the flow head scores chunks
        if metrics_of is None:
            metrics_of = partial(sample_metrics, symmetries=model.cfg.tokens.symmetries)
        for k in range(0, len(samples), 16):
            chunk = samples[k:k + 16]
            batch = model.processor.collate([make_item(model, s, None, self.cfg) for s in chunk])
            loss, _ = model.compute_loss(batch)
            losses.append(float(loss) * len(chunk))
            preds = model.predict_batch([s.predict_item() for s in chunk])
            rows += [metrics_of(p, s) for p, s in zip(preds, chunk)]
        m = aggregate(rows)
        m["val_loss"] = sum(losses) / len(samples)
        return m

    # ---- the loop
    def fit(self, stop_at: int | None = None) -> dict:
        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        resumed = self.try_resume()
        log_path = self.out / "metrics.jsonl"
        if self.acc.is_main_process:
            if resumed and log_path.exists():    # drop log lines written after the checkpoint
                keep = [ln for ln in log_path.read_text().splitlines() if json.loads(ln).get("step", 0) <= self.step]
                log_path.write_text("".join(ln + "\n" for ln in keep))
            elif not resumed:
                log_path.write_text("")
            (self.out / "train_config.json").write_text(json.dumps(self.cfg.to_dict(), indent=1))
            if not resumed:
                self.log_clipped()
        bar = tqdm(total=cfg.steps, initial=self.step, desc=f"train {cfg.stage}", disable=not self.progress,
                   dynamic_ncols=True)
        t0, last = time.perf_counter(), None
        while self.step < cfg.steps:
            rec = self.train_step()
            last = rec
            bar.update(1)
            bar.set_postfix(loss=f"{rec['loss']:.3f}", acc=f"{rec.get('token_acc', 0.0):.2f}")
            if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                rec["time_s"] = round(time.perf_counter() - t0, 2)
                self._log(rec)
            if cfg.eval_every and self.step % cfg.eval_every == 0 and self.step < cfg.steps and self.val_samples:
                model = self.eval_copy() if self.fsdp else None      # a collective under FSDP
                if self.acc.is_main_process:
                    self._log({"step": self.step, **{f"val/{k}": v for k, v in self.evaluate(model=model).items()}})
            if cfg.save_every and self.step % cfg.save_every == 0 and self.step < cfg.steps:
                self.save_resume()
                self.acc.wait_for_everyone()
            if stop_at is not None and self.step >= stop_at:
                bar.close()
                raise Interrupted(f"stopped at step {self.step}")
        bar.close()
        return self.finish(last)

    def finish(self, last: dict | None) -> dict:
        self.acc.wait_for_everyone()
        result = {"stage": self.cfg.stage, "steps": self.step, "final_loss": last["loss"] if last else None}
        state = self.acc.get_state_dict(self.model)
        if self.acc.is_main_process:
            self.raw.save_pretrained(self.out, extra={"training": {"stage": self.cfg.stage, "steps": self.step}},
                                     state_dict=state)
            # under FSDP the sharded model cannot run on one process: evaluate the checkpoint as written
            val = self.evaluate(model=load_policy(self.out, device=self.acc.device) if self.fsdp else None)
            if val:
                self._log({"step": self.step, **{f"val/{k}": v for k, v in val.items()}})
            (self.out / "offline_metrics.json").write_text(json.dumps({"stage": self.cfg.stage, **val}, indent=1))
            result["val"] = val

            plot_curves(self.out / "metrics.jsonl", self.out / "curves.png", title=f"Pose-VLA {self.cfg.stage}")
            if not self.cfg.keep_resume_state:
                shutil.rmtree(self.out / RESUME_DIR, ignore_errors=True)
            if val:
                print(format_table(val, f"validation ({self.cfg.stage}, {len(self.val_samples)} held-out samples)"))
        self.acc.wait_for_everyone()
        return result

    def eval_copy(self) -> PosePolicy | None:
        """FSDP: a full, unsharded copy of the model on the main process (None on the others), from
        the gathered weights written to a temporary directory and read back; every process calls it."""

        state = self.acc.get_state_dict(self.model)
        if not self.acc.is_main_process:
            return None
        with tempfile.TemporaryDirectory(dir=self.out, prefix=".eval") as tmp:
            self.raw.save_pretrained(tmp, state_dict=state)
            return load_policy(tmp, device=self.acc.device)

    def log_clipped(self) -> dict:
        """The clipped fraction per field group of the training targets (``clipped_fractions``):
        logged at step 0 in metrics.jsonl, printed, a WARNING for every group above 1 %."""
        stats = clipped_fractions(self.raw, self.train_samples, self.cfg, progress=self.progress)
        self._log({"step": 0, **stats})
        line, warns = clipped_report(stats)
        if self.progress:
            print(f"[posevla train] {line}")
        for w in warns:                       # a warning is printed even without progress output
            print(f"[posevla train] {w}", file=sys.stderr)
        return stats

    def _log(self, rec: dict) -> None:
        if self.acc.is_main_process:
            with open(self.out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
