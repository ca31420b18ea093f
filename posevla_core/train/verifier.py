"""Training of the object verifier (model.ObjectVerifier) on a frozen Pose-VLA.

    posevla train-verifier --init checkpoints/demo --data <grounding shards> <motion shards> <demos> --out <dir>

The verifier answers one question: is what the pointer points at the instructed object?
Everything else in the model stays as it is (frozen, eval mode), so the examples are
computed once and the training loop runs only the verifier (a few minutes on 2 CPU cores).

Examples, per scene (shards list every object with its category and 2D box; LeRobot demos
annotate their target only):

- **pointer** crops: the crop the model itself takes at its pointer's (u, v) for the scene's
  instruction and for the same instruction naming another category (a near miss: same color
  or same shape where the scene has one). Label: the pointer lies in the box of an object of
  the named category. These are the crops the verifier sees at run time, wrong pointers
  included. Demos contribute their own instruction only (their other objects are unknown).
- **box** crops: a crop around every labeled object (center jittered inside the box), once
  with the instruction naming its own category (positive) and once naming another (negative).
  Every object in every scene becomes a hard negative for its neighbors' categories: the
  decoder's own ``<no_object>`` answer learns from ~10 % absent-object instructions only.

Instructions for other categories are the scene's own instruction with the category words
replaced, so the verifier trains on the wording the policy is asked in.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from posevla_core.data.shards import iter_shard_samples
from posevla_core.data.sources import SourceConfig, detect_format, embodiment_samples
from posevla_core.paths import architecture_of, head_of
from posevla_core.paths import CONFIG_FILE
from posevla_core.policies.small.modeling import PoseVLA
from posevla_core.train.plots import plot_curves

NEAR_MISS_FRACTION = 0.7      # other categories drawn among the near misses (same color or shape) this often
BOX_MARGIN = 0.15             # a pointer counts as "on" an object within this fraction of its box side outside it


@dataclass
class VerifierConfig:
    steps: int = 1500
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    jitter: float = 0.25          # box crops: center jitter, as a fraction of the box side
    val_fraction: float = 0.1     # scenes held out for the validation numbers (and the threshold table)
    eval_every: int = 250
    frame_stride: int = 2         # LeRobot demos: every n-th frame
    encode_batch: int = 32
    seed: int = 0


# ---- scenes -------------------------------------------------------------------------------------
@dataclass
class _Scene:
    rgb: np.ndarray
    depth: np.ndarray | None
    K: np.ndarray
    instruction: str
    category: str                         # the instructed object's category
    objects: list[tuple[str, np.ndarray]]  # (category, box x1 y1 x2 y2 normalized): every labeled object
    complete: bool                        # objects lists the whole scene (shards) or the target only (demos)
    group: str                            # what the train / val split keeps together: one image, one demo episode


def _scenes(root: str | Path, tok, stride: int, progress: bool) -> list[_Scene]:
    kind = detect_format(root)
    out = []
    if kind == "lerobot":
        for s in embodiment_samples(root, tok, SourceConfig(frame_stride=stride), progress=progress):
            if s.supervise_grounding and s.target.box_xyxy is not None:
                out.append(_Scene(s.rgb, s.depth, s.K, s.instruction, s.target.category,
                                  [(s.target.category, np.asarray(s.target.box_xyxy, float))], False,
                                  s.source.split("/frame")[0]))
        return out
    for s in tqdm(iter_shard_samples(root), desc=f"load {Path(root).name}", disable=not progress, leave=False):
        if "scene_categories" not in s or "scene_box_xyxy" not in s:
            objs, complete = [(s["category"], np.asarray(s["box_xyxy"], float))], False
        else:
            objs = [(c, np.asarray(b, float)) for c, b in zip(s["scene_categories"], s["scene_box_xyxy"])
                    if np.all(np.isfinite(b))]
            complete = True
        # a grounding scene is stored once per instruction (target, distractor): keep its samples together
        key = hashlib.sha1(np.ascontiguousarray(s["rgb"]).tobytes()).hexdigest()
        out.append(_Scene(s["rgb"], s["depth"], s["K"], s["instruction"], s["category"], objs, complete, key))
    return out


def swap_category(instruction: str, old: str, new: str) -> str | None:
    """The instruction naming ``new`` instead of ``old`` (None when it does not name ``old``)."""
    return instruction.replace(old, new, 1) if old in instruction else None


def other_category(cat: str, categories: list[str], rng: np.random.Generator) -> str:
    """A category other than ``cat``; a near miss (same first or last word) NEAR_MISS_FRACTION of the time."""
    pool = [c for c in categories if c != cat and c != "object"]
    words = cat.split()
    near = [c for c in pool if c.split()[0] == words[0] or c.split()[-1] == words[-1]]
    src = near if near and rng.random() < NEAR_MISS_FRACTION else pool
    return src[int(rng.integers(len(src)))]


def _on_object(uv: np.ndarray, cat: str, objects: list[tuple[str, np.ndarray]]) -> bool:
    for c, b in objects:
        mx, my = BOX_MARGIN * (b[2] - b[0]), BOX_MARGIN * (b[3] - b[1])
        if c == cat and b[0] - mx <= uv[0] <= b[2] + mx and b[1] - my <= uv[1] <= b[3] + my:
            return True
    return False


# ---- examples ------------------------------------------------------------------------------------
@contextlib.contextmanager
def _first_proposal_only(model):
    saved, model.cfg.verify_proposals = model.cfg.verify_proposals, 1
    try:
        yield
    finally:
        model.cfg.verify_proposals = saved


@torch.no_grad()
def collect_examples(model, roots: list, cfg: VerifierConfig, progress: bool = True) -> dict:
    """{"crop": (N, 3, G, G) float16 normalized crops, "text": [N] instructions, "label": (N,),
    "group": (N,) image / episode index (the train / val split keeps one together), "kind": (N,) 0 pointer /
    1 box, "scenes": how many labeled frames}."""
    rng = np.random.default_rng([cfg.seed, 7])
    cats = [c for c in model.tokenizer.cfg.categories if c != "object"]
    scenes = []
    for r in roots:
        scenes += _scenes(r, model.tokenizer.cfg, cfg.frame_stride, progress)
    if not scenes:
        raise ValueError(f"no labeled scenes in {[str(r) for r in roots]}")
    group_ids = {g: k for k, g in enumerate(dict.fromkeys(sc.group for sc in scenes))}
    crops, texts, labels, groups, kinds = [], [], [], [], []
    items = []    # (scene index, instruction, the category it names)
    for i, sc in enumerate(scenes):
        items.append((i, sc.instruction, sc.category))
        neg = other_category(sc.category, cats, rng)
        alt = swap_category(sc.instruction, sc.category, neg)
        if sc.complete and alt is not None:
            items.append((i, alt, neg))
    # Pointer crops are taken at the FIRST proposal (the heatmap's peak): a verifier already in
    # the model (a random one, while it is being trained) must not move the pointer it is judged on.
    with _first_proposal_only(model):
        bar = tqdm(total=len(items), desc="verifier examples", disable=not progress)
        for k in range(0, len(items), cfg.encode_batch):
            chunk = items[k:k + cfg.encode_batch]
            batch = model.collate([model.make_example(scenes[i].rgb, scenes[i].depth, scenes[i].K, instr)
                                   for i, instr, _ in chunk])
            _, _, aux = model.encode_prefix(batch, return_aux=True, with_prior=False)
            hr, uv = aux["image_hr"], aux["anchors"][:, :2]
            x0, y0, s, W, H = batch["crop"].numpy().T
            crops.append(model.glimpse.crop(hr, uv).half().cpu())
            uv_img = np.stack([(uv[:, 0].cpu().numpy() * s + x0) / W, (uv[:, 1].cpu().numpy() * s + y0) / H], 1)
            for j, (i, instr, cat) in enumerate(chunk):
                texts.append(instr)
                labels.append(float(_on_object(uv_img[j], cat, scenes[i].objects)))
                groups.append(group_ids[scenes[i].group])
                kinds.append(0)
            # box crops: the scene's own instruction rows only (one per scene), every labeled object
            box_uv, box_rows = [], []
            for j, (i, instr, cat) in enumerate(chunk):
                if instr != scenes[i].instruction:
                    continue
                sc = scenes[i]
                for c, b in sc.objects:
                    side = np.array([b[2] - b[0], b[3] - b[1]])
                    center = np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2]) + cfg.jitter * side * rng.uniform(-1, 1, 2)
                    uvm = [(center[0] * W[j] - x0[j]) / s[j], (center[1] * H[j] - y0[j]) / s[j]]
                    for name, lab in ((c, 1.0), (other_category(c, cats, rng), 0.0)):
                        text = swap_category(sc.instruction, sc.category, name)
                        if text is None:
                            continue
                        box_uv.append(uvm)
                        box_rows.append(j)
                        texts.append(text)
                        labels.append(lab)
                        groups.append(group_ids[scenes[i].group])
                        kinds.append(1)
            if box_rows:
                rows = torch.as_tensor(box_rows)
                crops.append(model.glimpse.crop(hr[rows], torch.tensor(box_uv, dtype=torch.float32, device=hr.device))
                             .half().cpu())
            bar.update(len(chunk))
        bar.close()
    return {"crop": torch.cat(crops), "text": texts, "label": torch.tensor(labels), "group": torch.tensor(groups),
            "kind": torch.tensor(kinds), "scenes": len(scenes)}


@torch.no_grad()
def sentences(model, texts: list[str], batch: int = 256) -> torch.Tensor:
    """(N, dim) sentence embeddings of ``texts``, each unique string encoded once."""
    uniq = sorted(set(texts))
    vecs = torch.cat([model.sentence(uniq[k:k + batch]).cpu() for k in range(0, len(uniq), batch)])
    pos = {t: i for i, t in enumerate(uniq)}
    return vecs[torch.as_tensor([pos[t] for t in texts])]


# ---- training -------------------------------------------------------------------------------------
def _metrics(logits: torch.Tensor, labels: torch.Tensor, kind: torch.Tensor, threshold: float) -> dict:
    p = logits.sigmoid()
    out = {"val_loss": float(F.binary_cross_entropy_with_logits(logits, labels)),
           "val_acc": float(((p >= threshold) == (labels > 0.5)).float().mean())}
    for name, k in (("pointer", 0), ("box", 1)):
        m = kind == k
        pos, neg = m & (labels > 0.5), m & (labels < 0.5)
        if pos.any():
            out[f"{name}_false_reject"] = float((p[pos] < threshold).float().mean())
        if neg.any():
            out[f"{name}_false_accept"] = float((p[neg] >= threshold).float().mean())
    return out


def threshold_table(logits: torch.Tensor, labels: torch.Tensor, kind: torch.Tensor,
                    thresholds=(0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9)) -> list[dict]:
    """Per threshold, on the pointer crops (what run time sees): the share of right pointers
    rejected and of wrong ones accepted."""
    return [{"threshold": t, **{k: v for k, v in _metrics(logits, labels, kind, t).items() if "pointer" in k}}
            for t in thresholds]


def train_verifier(model, examples: dict, cfg: VerifierConfig, log=None, progress: bool = True) -> dict:
    """Train ``model.verifier`` on ``examples`` (collect_examples); the rest of the model is frozen."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng([cfg.seed, 11])
    groups = examples["group"].numpy()
    n_scenes = int(groups.max()) + 1
    val_scenes = rng.permutation(n_scenes)[:max(1, int(round(cfg.val_fraction * n_scenes)))]
    is_val = torch.from_numpy(np.isin(groups, val_scenes))
    text = sentences(model, examples["text"])
    crop, label, kind = examples["crop"], examples["label"], examples["kind"]
    tr = torch.nonzero(~is_val)[:, 0]
    va = torch.nonzero(is_val)[:, 0]
    dev = model.device
    ver = model.verifier
    model.eval()
    ver.train()
    for p in model.parameters():
        p.requires_grad_(False)
    for p in ver.parameters():
        p.requires_grad_(True)
    opt = torch.optim.AdamW(ver.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # 5 % warm-up (at least 2 steps: OneCycleLR divides by its warm-up length), then cosine
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(cfg.steps, 4),
                                                pct_start=max(0.05, 2.0 / max(cfg.steps, 4)))
    pos = float(label[tr].mean())
    pos_weight = torch.tensor((1 - pos) / max(pos, 1e-6), device=dev)    # balance positives and negatives

    def val_logits() -> torch.Tensor:
        ver.eval()
        with torch.no_grad():
            out = torch.cat([ver(crop[va[k:k + 1024]].to(dev), text[va[k:k + 1024]].to(dev)).cpu()
                             for k in range(0, len(va), 1024)])
        ver.train()
        return out

    history = []
    bar = tqdm(range(cfg.steps), desc="train verifier", disable=not progress)
    for step in bar:
        idx = tr[torch.from_numpy(rng.integers(len(tr), size=cfg.batch_size))]
        logits = ver(crop[idx].to(dev), text[idx].to(dev))
        loss = F.binary_cross_entropy_with_logits(logits, label[idx].to(dev), pos_weight=pos_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        rec = {"step": step + 1, "loss": float(loss.detach())}
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            rec.update({f"val/{k}": v for k, v in _metrics(val_logits(), label[va], kind[va],
                                                            model.cfg.verify_threshold).items()})
            bar.set_postfix(loss=f"{rec['loss']:.3f}", val_acc=f"{rec['val/val_acc']:.3f}")
        history.append(rec)
        if log is not None:
            log(rec)
    ver.eval()
    final = val_logits()
    return {"examples": int(len(label)), "train_examples": int(len(tr)), "val_examples": int(len(va)),
            "scenes": int(examples["scenes"]), "positive_fraction": pos,
            "val": _metrics(final, label[va], kind[va], model.cfg.verify_threshold),
            "thresholds": threshold_table(final, label[va], kind[va]), "history": history}


def train_verifier_main(init: str, data: list, out_dir: str, cfg: VerifierConfig | None = None,
                        verify_threshold: float | None = None, progress: bool = True) -> dict:
    """Load the small-model checkpoint ``init``, give it a verifier (a fresh one when it has
    none), train it on ``data`` and save the whole model to ``out_dir`` (the other files of
    ``init``, e.g. its curves and offline metrics, are copied along)."""

    cfg = cfg or VerifierConfig()
    if architecture_of(init) != "small" or head_of(init) != "tokens":
        raise ValueError(f"{init}: the object verifier is trained on a small-model token-head checkpoint "
                         f"(this one: {architecture_of(init)}, head {head_of(init)}); train an action expert on top after")
    t0 = time.perf_counter()
    base = PoseVLA.from_pretrained(init, device="cpu")
    mcfg = replace(base.cfg, verifier=True, **({} if verify_threshold is None else
                                                {"verify_threshold": float(verify_threshold)}))
    model = PoseVLA(mcfg, device="cpu")
    missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
    if unexpected or any(not k.startswith("verifier.") for k in missing):
        raise ValueError(f"{init}: weights do not fit the model (missing {missing[:5]}, unexpected {unexpected[:5]})")
    del base
    examples = collect_examples(model, data, cfg, progress)
    t1 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "metrics_verifier.jsonl"
    log_path.write_text("")
    with log_path.open("a") as f:
        res = train_verifier(model, examples, cfg, log=lambda r: f.write(json.dumps(r) + "\n"), progress=progress)
    src = Path(init)
    if src.resolve() != out.resolve():
        for p in src.iterdir():
            if p.is_file() and p.name not in (CONFIG_FILE, "model.safetensors", "pose_vocab.json"):
                shutil.copy2(p, out / p.name)
    meta = json.loads((src / CONFIG_FILE).read_text())
    keep = {k: v for k, v in meta.items() if k not in ("architecture", "posevla", "text_encoder_source")}
    model.save_pretrained(out, extra=keep)
    plot_curves(log_path, out / "curves_verifier.png", title="object verifier", right_title="held-out frames",
                keys=("val/val_acc", "val/pointer_false_reject", "val/pointer_false_accept", "val/box_false_accept"))
    report = {k: v for k, v in res.items() if k != "history"}
    report.update({"config": asdict(cfg), "init": str(init), "data": [str(d) for d in data],
                   "verify_threshold": model.cfg.verify_threshold,
                   "timings_s": {"examples": round(t1 - t0, 1), "train": round(time.perf_counter() - t1, 1)}})
    (out / "verifier_report.json").write_text(json.dumps(report, indent=1))
    return report
