"""One training stage end to end (``train_main``: data, model, Trainer, checkpoint), offline
metrics of a checkpoint (``eval_offline_main``) and bin fitting (``fit_bins_main``), with the
bin checks between them. ``posevla train`` / ``python -m posevla_core.train`` parse the flags."""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import yaml
from tqdm.auto import tqdm

from posevla_core.config import TokenizerConfig
from posevla_core.data.sources import SourceConfig, detect_format, load_samples
from posevla_core.paths import share_dir
from posevla_core.paths import architecture_of, read_meta
from posevla_core.policies.factory import load_policy, policy_class
from posevla_core.policies.flow.configuration import ExpertConfig
from posevla_core.poses import PoseTarget
from posevla_core.tokens.grammar import fit_bins
from posevla_core.train.config import STAGES, TrainConfig, stage_defaults
from posevla_core.train.demo_model import model_overrides as demo_model_overrides
from posevla_core.train.metrics import aggregate, format_table, sample_metrics
from posevla_core.train.trainer import Interrupted, Trainer, split_indices

__all__ = ["STAGES", "TrainConfig", "Trainer", "Interrupted", "train_main", "eval_offline_main", "load_split",
           "fit_bins_main", "tokens_of", "read_bins", "merge_bins", "BinsError"]


def load_split(data_dir: str | Path | list, cfg: TrainConfig, tok, progress: bool = True):
    """(train, val) sample lists of one or several data directories."""

    dirs = data_dir if isinstance(data_dir, (list, tuple)) else [data_dir]
    scfg = SourceConfig(frame_stride=cfg.frame_stride, open_threshold=cfg.open_threshold, max_samples=cfg.max_samples,
                        expert=expert_config(cfg), seed=cfg.seed)
    train, val = [], []
    for d in dirs:
        samples = load_samples(d, cfg.stage, tok, scfg, progress=progress)
        tr, va = split_indices(len(samples), cfg.val_fraction)
        train += [samples[i] for i in tr]
        val += [samples[i] for i in va]
    return train, val


def expert_config(cfg: TrainConfig) -> dict | None:
    """The action expert's config of a flow-head run (None for the token head)."""
    if cfg.head != "flow":
        return None

    return ExpertConfig.from_dict(cfg.expert).to_dict()


def _tokenizer_config(init, cfg: TrainConfig):
    if init:
        return policy_class(architecture_of(init)).config_from(read_meta(init)["posevla"]).tokens
    return policy_class(cfg.architecture).config_from(cfg.model).tokens


def train_main(stage: str, data_dir, out_dir: str, init: str | None = None, steps: int | None = None,
               config_file: str | None = None, resume: bool = True, stop_at: int | None = None,
               progress: bool = True, model_overrides: dict | None = None, bins: dict | str | None = None,
               **overrides) -> dict:
    """Train one stage. ``config_file``: YAML of TrainConfig fields (config/train/<stage>.yaml
    is used when it exists and none is given); ``steps`` and ``overrides`` win over the file,
    ``model_overrides`` are merged into its ``model`` dict (the model config when training
    from scratch or from a ``base``). ``bins`` (``posevla fit-bins`` JSON, a path or its dict)
    go into the new model's ``tokens``; with ``init`` they must equal the checkpoint's own
    (bins give every pose token its meaning: changing them under trained weights is refused).
    An existing ``out_dir/resume`` continues the interrupted run unless ``resume`` is False."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if config_file is None:
        try:
            default = share_dir() / "config" / "train" / f"{stage}.yaml"
        except FileNotFoundError:      # core-only install without the share files: stage defaults
            default = None
        config_file = str(default) if default is not None and default.is_file() else None
    if config_file:
        cfg = TrainConfig.from_file(config_file, stage=stage, steps=steps, **overrides)
    else:
        base = stage_defaults(stage).to_dict()
        base.update(overrides)
        if steps is not None:
            base["steps"] = steps
        cfg = TrainConfig(**base)
    if model_overrides:
        cfg.model = {**cfg.model, **model_overrides}
    if cfg.stage != stage:
        raise ValueError(f"{config_file} is for stage {cfg.stage!r}, not {stage!r}")
    if init and not Path(init).is_dir():
        raise FileNotFoundError(f"--init checkpoint {init} does not exist")
    if bins is not None:
        fitted = read_bins(bins) if isinstance(bins, (str, Path)) else dict(bins)
        if init:
            _check_init_bins(init, cfg, fitted, bins if isinstance(bins, (str, Path)) else "bins")
        else:
            cfg.model = {**cfg.model, "tokens": merge_bins(cfg.model.get("tokens", {}), fitted, progress)}
    if not resume:
        shutil.rmtree(Path(out_dir) / "resume", ignore_errors=True)
    tok = _tokenizer_config(init, cfg)
    train, val = load_split(data_dir, cfg, tok, progress=progress)
    trainer = Trainer(cfg, train, val, out_dir, init=init, progress=progress)
    if trainer.acc.is_main_process and progress:
        print(f"[posevla train] stage={stage} train={len(train)} val={len(val)} steps={cfg.steps} "
              f"batch={cfg.batch_size} processes={trainer.acc.num_processes} device={trainer.acc.device}"
              + (f" fsdp_units={trainer.fsdp_units}" if trainer.fsdp else ""))
    return trainer.fit(stop_at=stop_at)


BIN_FIELDS = ("position_edges", "size_edges", "object_rotation_ref", "hand_rotation_ref")


class BinsError(ValueError):
    """A bins file that cannot be used (unreadable, inconsistent, or other than an --init
    checkpoint's): one line for the command line."""


def read_bins(path: str | Path) -> dict:
    """A ``posevla fit-bins`` JSON: only the fitted TokenizerConfig fields (one clear error else)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"bins file {p} does not exist (make it with `posevla fit-bins`)")
    try:
        d = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise BinsError(f"{p}: not JSON ({e})") from e
    if not isinstance(d, dict) or not d or set(d) - set(BIN_FIELDS):
        raise BinsError(f"{p}: expected a JSON object of {list(BIN_FIELDS)} (posevla fit-bins output), "
                         f"got {sorted(d) if isinstance(d, dict) else type(d).__name__}")
    return d


def merge_bins(tokens: dict, fitted: dict, progress: bool = True) -> dict:
    """``tokens`` (TokenizerConfig fields) with the fitted bins; the bin counts follow the
    edges (a bins file fitted for 256 position bins makes 256), validated as a TokenizerConfig."""

    out = {**tokens, **fitted}
    for count, edges, n_edges in (("position_bins", "position_edges", lambda e: len(e[0])),
                                  ("size_bins", "size_edges", len)):
        if fitted.get(edges) is not None:
            n = n_edges(fitted[edges]) - 1
            if count in tokens and tokens[count] != n and progress:
                print(f"[posevla train] {count}: {tokens[count]} -> {n} (from the bins file)")
            out[count] = n
    try:
        TokenizerConfig(**out)
    except ValueError as e:
        raise BinsError(f"the bins do not fit the model's tokens: {e}") from e
    return out


def _check_init_bins(init, cfg: TrainConfig, fitted: dict, name) -> None:
    """Refuse bins that differ from the ``init`` checkpoint's (fine-tuning keeps its bins)."""

    have = _tokenizer_config(init, cfg)
    differ = [k for k, v in fitted.items() if getattr(have, k) is None
              or np.shape(getattr(have, k)) != np.shape(v) or not np.allclose(getattr(have, k), v, atol=1e-9)]
    if differ:
        raise BinsError(f"--bins {name}: {init} was trained with other bins ({', '.join(differ)} differ); bins fix "
                         f"what every pose token means, so a fine-tune keeps its checkpoint's bins: drop --bins, or "
                         f"train from scratch with them")


def tokens_of(source: str | Path | None) -> dict:
    """TokenizerConfig fields (bin counts, categories, symmetries) of ``source``: a JSON/YAML
    file of the fields, or a checkpoint directory (its config.json); None: the sim demo
    model's (the MuJoCo scene's categories and symmetries, what ``make checkpoint`` fits)."""

    if source is None:
        return demo_model_overrides()["tokens"]
    p = Path(source)
    if p.is_dir():
        return asdict(_tokenizer_config(str(p), None))
    if not p.is_file():
        raise FileNotFoundError(f"--tokens {p}: neither a checkpoint directory nor a file")

    d = yaml.safe_load(p.read_text())      # JSON is YAML
    if not isinstance(d, dict):
        raise ValueError(f"{p}: expected a mapping of TokenizerConfig fields")

    try:
        return asdict(TokenizerConfig(**d))
    except TypeError as e:        # an unknown field
        raise ValueError(f"{p}: {e}") from e


def eval_offline_main(checkpoint: str, data_dir, out_json: str | None = None, stage: str | None = None,
                      limit: int = 0, progress: bool = True) -> dict:
    """Greedy-decode every sample of ``data_dir`` (all of it, no split) and report metrics."""
    # torch: heavy; fit-bins and tokens_of run without it
    import torch

    model = load_policy(checkpoint, device="auto")
    kind = detect_format(data_dir)
    stage = stage or {"grounding": "grounding", "motion": "motion", "lerobot": "embodiment"}[kind]
    samples = load_samples(data_dir, stage, model.cfg.tokens, SourceConfig(max_samples=limit), progress=progress)
    rows = []
    with torch.no_grad():
        for k in tqdm(range(0, len(samples), 16), desc="eval-offline", disable=not progress):
            chunk = samples[k:k + 16]
            preds = model.predict_batch([s.predict_item() for s in chunk])
            rows += [sample_metrics(p, s, symmetries=model.cfg.tokens.symmetries) for p, s in zip(preds, chunk)]
    m = {"stage": stage, "checkpoint": str(checkpoint), "data": str(data_dir), **aggregate(rows)}
    print(format_table({k: v for k, v in m.items() if k not in ("checkpoint", "data")},
                       f"offline metrics: {checkpoint} on {data_dir}"))
    if out_json:
        Path(out_json).parent.mkdir(parents=True, exist_ok=True)
        Path(out_json).write_text(json.dumps(m, indent=1))
    return m


def fit_bins_main(data_dirs, out_json: str, tokens: dict | None = None, progress: bool = True) -> dict:
    """``posevla fit-bins``: percentile translation bins (x, y, z apart), size bins and the
    rotation references fitted to the targets of ``data_dirs`` (shards or LeRobot demos),
    written as JSON (a TokenizerConfig fragment: ``posevla train --bins`` merges it into the
    model config, and the checkpoint's config.json carries it; never a pickle)."""

    tok = TokenizerConfig(**(tokens or {}))
    targets = []
    for d in (data_dirs if isinstance(data_dirs, (list, tuple)) else [data_dirs]):
        stage = "grounding" if detect_format(d) == "grounding" else "motion"
        # demos without object annotations (teleop on a real arm) still fit the waypoint bins
        targets += [s.target if s.supervise_grounding else replace(PoseTarget.absent(), waypoints=s.target.waypoints)
                    for s in load_samples(d, stage, tok, SourceConfig(negative_fraction=0.0, detect_fraction=0.0),
                                          progress=progress)]
    fitted = fit_bins(targets, tok)
    TokenizerConfig(**{**tok.__dict__, **fitted})          # validates the fitted fields
    Path(out_json).parent.mkdir(parents=True, exist_ok=True)
    Path(out_json).write_text(json.dumps(fitted, indent=1))
    if progress:
        print(f"[posevla fit-bins] {len(targets)} targets -> {out_json}")
    return fitted
