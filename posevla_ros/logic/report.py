"""Evaluation results -> summary.json, results.jsonl, PNG plots, a GIF of a rollout and an
HTML report. No ROS here: the evaluator node hands over plain records and frames.

One episode record (a dict, one line of results.jsonl)::
    {"episode": 0, "seed": 1000, "task": "pick", "instruction": "pick up the red cube",
     "success": true, "time_to_success_s": 7.4, "duration_s": 7.4, "timeout": false,
     "reason": "success", "num_frames": 74, "dataset_episode_index": 0}

``summarize`` turns the records into the summary (success rate with a Wilson 95 % score
interval, time-to-success statistics); ``write_report`` writes every artifact.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import numpy as np


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (scipy ``binomtest(...).proportion_ci``).
    n == 0 gives the uninformative (0, 1)."""
    # scipy: loaded on use, so the launch graphs and the CLI that import this module do not pay for it
    from scipy.stats import binomtest

    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes}/{n}")
    if n == 0:
        return 0.0, 1.0
    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def summarize(records: list[dict], task: str, **extra: Any) -> dict:
    """The summary.json content. ``extra`` (checkpoint, seed, ...) is copied in."""
    n = len(records)
    k = sum(1 for r in records if r.get("success"))
    lo, hi = wilson_interval(k, n)
    tts = [float(r["time_to_success_s"]) for r in records
           if r.get("success") and r.get("time_to_success_s") is not None]
    summary = {
        "task": task,
        "episodes": n,
        "successes": k,
        "success_rate": (k / n) if n else 0.0,
        "ci95": [lo, hi],
        "ci_method": "wilson",
        "time_to_success_s": {
            "mean": float(np.mean(tts)) if tts else None,
            "median": float(np.median(tts)) if tts else None,
            "min": float(np.min(tts)) if tts else None,
            "max": float(np.max(tts)) if tts else None,
        },
        "timeouts": sum(1 for r in records if r.get("timeout")),
        "per_episode": list(records),
    }
    summary.update(extra)
    return summary


def absent_line(summary: dict, prefix: str = ", ") -> str:
    """``prefix`` + "absent refused: k/N, motions: m" of a summary with absent-object episodes
    ('' without)."""
    a = summary.get("absent")
    return f"{prefix}absent refused: {a['refused']}/{a['episodes']}, motions: {a['motions']}" if a else ""


@dataclass
class EpisodeMedia:
    """What the report shows of one episode beyond its record: downscaled RGB frames
    (uint8 HxWx3) and time series (``t`` seconds from the episode start)."""

    frames: list = field(default_factory=list)
    t: list = field(default_factory=list)                 # [T] seconds
    joints: list = field(default_factory=list)            # [T][dof] rad
    ee_xyz: list = field(default_factory=list)            # [T][3] m, base frame (may be empty)
    gripper: list = field(default_factory=list)           # [T] 0 closed .. 1 open


def _plt():
    # matplotlib: heavy, only the plots need it
    import matplotlib

    matplotlib.use("Agg", force=True)
    # matplotlib: heavy, only the plots need it
    import matplotlib.pyplot as plt

    return plt


def plot_success(summary: dict, path: Path) -> Path:
    plt = _plt()
    recs = summary["per_episode"]
    fig, ax = plt.subplots(figsize=(6, 3))
    xs = np.arange(len(recs))
    ys = [1 if r.get("success") else 0 for r in recs]
    ax.bar(xs, ys, color=["tab:green" if y else "tab:red" for y in ys], width=0.8)
    lo, hi = summary["ci95"]
    rate = summary["success_rate"]
    ax.axhline(rate, color="k", lw=1.5, label=f"success rate {rate:.2f}")
    ax.axhspan(lo, hi, color="gray", alpha=0.25, label=f"Wilson 95% [{lo:.2f}, {hi:.2f}]")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("episode")
    ax.set_ylabel("success")
    ax.set_title(f"{summary['task']}: {summary['successes']}/{summary['episodes']}")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_time_to_success(summary: dict, path: Path) -> Path:
    plt = _plt()
    recs = summary["per_episode"]
    fig, ax = plt.subplots(figsize=(6, 3))
    for i, r in enumerate(recs):
        t = r.get("time_to_success_s") if r.get("success") else r.get("duration_s")
        ax.bar(i, t or 0.0, color="tab:green" if r.get("success") else "tab:red", width=0.8)
    ax.set_xlabel("episode")
    ax.set_ylabel("seconds")
    ax.set_title("time to success (green) / episode length without success (red)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_episode(media: EpisodeMedia, record: dict, path: Path) -> Path:
    plt = _plt()
    t = np.asarray(media.t, dtype=float)
    rows = 1 + int(len(media.ee_xyz) == len(t) and len(t) > 0) + int(len(media.gripper) == len(t) and len(t) > 0)
    fig, axes = plt.subplots(rows, 1, figsize=(6, 1.8 * rows + 0.4), sharex=True, squeeze=False)
    axes = axes[:, 0]
    if len(media.joints) == len(t) and len(t):
        axes[0].plot(t, np.asarray(media.joints, dtype=float), lw=1)
    axes[0].set_ylabel("joints (rad)")
    row = 1
    if rows > 1 and len(media.ee_xyz) == len(t) and len(t):
        xyz = np.asarray(media.ee_xyz, dtype=float)
        for j, name in enumerate("xyz"):
            axes[row].plot(t, xyz[:, j], label=name)
        axes[row].set_ylabel("ee (m)")
        axes[row].legend(fontsize=6, loc="upper right")
        row += 1
    if row < rows:
        axes[row].plot(t, np.asarray(media.gripper, dtype=float), color="k")
        axes[row].set_ylabel("gripper")
        axes[row].set_ylim(-0.05, 1.05)
    if record.get("success") and record.get("time_to_success_s") is not None:
        for ax in axes:
            ax.axvline(record["time_to_success_s"], color="tab:green", ls="--")
    axes[-1].set_xlabel("t (s)")
    axes[0].set_title(f"episode {record.get('episode')}: {'success' if record.get('success') else 'failure'}")
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return path


def write_gif(frames: list, path: Path, fps: float = 4.0, max_side: int = 240) -> Path | None:
    """Animated GIF of RGB uint8 frames (downscaled so the longer side is <= max_side)."""
    # Pillow: only the GIF and image media need it
    from PIL import Image

    if not frames:
        return None
    imgs = []
    for f in frames:
        im = Image.fromarray(np.asarray(f, dtype=np.uint8))
        s = max_side / max(im.size)
        if s < 1:
            im = im.resize((max(1, round(im.size[0] * s)), max(1, round(im.size[1] * s))))
        imgs.append(im.convert("P", palette=Image.ADAPTIVE))
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=int(1000 / fps), loop=0)
    return path


def write_thumbnail(frame, path: Path, max_side: int = 160) -> Path:
    # Pillow: only the GIF and image media need it
    from PIL import Image

    im = Image.fromarray(np.asarray(frame, dtype=np.uint8))
    im.thumbnail((max_side, max_side))
    im.save(path)
    return path


def write_results(out_dir: str | Path, summary: dict) -> tuple[Path, Path]:
    """results.jsonl (one record per line) and summary.json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jl = out / "results.jsonl"
    jl.write_text("".join(json.dumps(r, default=_json_default) + "\n" for r in summary["per_episode"]))
    sj = out / "summary.json"
    sj.write_text(json.dumps(summary, indent=2, default=_json_default))
    return jl, sj


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def write_report(out_dir: str | Path, summary: dict, media: dict[int, EpisodeMedia] | None = None,
                 gif_episode: int | None = None) -> Path:
    """All artifacts under ``out_dir``: summary.json, results.jsonl, plots/*.png,
    media/ep_XXX_{first,last}.png, rollout.gif (``gif_episode``, default: the first
    successful episode with frames, else the first with frames) and report.html.
    Returns the report path. ``summary['artifacts']`` lists what was written."""
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    (out / "media").mkdir(parents=True, exist_ok=True)
    media = media or {}
    arts: dict[str, Any] = {"plots": [], "gif": None}
    arts["plots"].append(str(plot_success(summary, out / "plots" / "success.png").relative_to(out)))
    arts["plots"].append(str(plot_time_to_success(summary, out / "plots" / "time_to_success.png").relative_to(out)))
    rows = []
    for rec in summary["per_episode"]:
        i = int(rec["episode"])
        m = media.get(i)
        cells: dict[str, Any] = {"thumbs": [], "plot": None}
        if m is not None and m.frames:
            cells["thumbs"] = [str(write_thumbnail(f, out / "media" / f"ep_{i:03d}_{name}.png").relative_to(out))
                               for f, name in ((m.frames[0], "first"), (m.frames[-1], "last"))]
        if m is not None and len(m.t):
            cells["plot"] = str(plot_episode(m, rec, out / "plots" / f"episode_{i:03d}.png").relative_to(out))
        rows.append((rec, cells))
    if gif_episode is None:
        with_frames = [r["episode"] for r in summary["per_episode"] if media.get(r["episode"]) and media[r["episode"]].frames]
        good = [e for e in with_frames if next(r for r in summary["per_episode"] if r["episode"] == e).get("success")]
        gif_episode = (good or with_frames or [None])[0]
    if gif_episode is not None and media.get(gif_episode) and media[gif_episode].frames:
        g = write_gif(media[gif_episode].frames, out / "rollout.gif")
        arts["gif"] = str(g.relative_to(out))
        arts["gif_episode"] = int(gif_episode)
    summary["artifacts"] = arts
    write_results(out, summary)
    path = out / "report.html"
    path.write_text(_html(summary, rows))
    summary["artifacts"]["report"] = "report.html"
    write_results(out, summary)
    return path


_TEMPLATE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Pose-VLA evaluation: {{ s.task }}</title>
<style>body{font-family:sans-serif;margin:1.5em} table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top} tr.ok td:nth-child(4){color:green}
tr.fail td:nth-child(4){color:#b00}</style></head><body>
<h1>Pose-VLA evaluation: {{ s.task }}</h1>
<p><b>Success rate {{ "%.3f"|format(s.success_rate) }}</b> ({{ s.successes }}/{{ s.episodes }}),
Wilson 95% interval [{{ "%.3f"|format(s.ci95[0]) }}, {{ "%.3f"|format(s.ci95[1]) }}].
Time to success: mean {{ s.time_to_success_s.mean|num }} s, median {{ s.time_to_success_s.median|num }} s.
Timeouts: {{ s.timeouts|default(0) }}.</p>
<table>{% for k, v in meta %}<tr><th>{{ k }}</th><td>{{ v|num(3) }}</td></tr>{% endfor %}</table>
<h2>Plots</h2>{% for p in arts.plots|default([]) %}<img src="{{ p }}">{% endfor %}
{% if arts.gif %}<h2>Rollout (episode {{ arts.gif_episode }})</h2><img src="{{ arts.gif }}">{% endif %}
<h2>Episodes</h2>
<table><tr><th>#</th><th>seed</th><th>instruction</th><th>success</th><th>time to success (s)</th>
<th>duration (s)</th><th>end</th><th>first / last frame</th><th>trajectory</th></tr>
{% for rec, m in rows %}<tr class="{{ 'ok' if rec.success else 'fail' }}"><td>{{ rec.episode }}</td>
<td>{{ rec.seed|num }}</td><td>{{ rec.instruction }}</td><td>{{ 'yes' if rec.success else 'no' }}</td>
<td>{{ rec.time_to_success_s|num }}</td><td>{{ rec.duration_s|num }}</td><td>{{ rec.reason }}</td>
<td>{% for t in m.thumbs %}<img src="{{ t }}"> {% endfor %}</td>
<td>{% if m.plot %}<img src="{{ m.plot }}" width="360">{% endif %}</td></tr>
{% endfor %}</table>
{% if s.absent %}<h2>Absent-object instructions</h2>
<p><b>Refused {{ s.absent.refused }}/{{ s.absent.episodes }}, motions: {{ s.absent.motions }}</b> (right: every
prediction object_found false, no trajectory sent, no arm joint moved more than {{ s.absent.motion_tol_rad }} rad).</p>
<table><tr><th>#</th><th>seed</th><th>instruction</th><th>refused</th><th>motion</th><th>predictions (refused)</th>
<th>trajectories</th><th>max joint excursion (rad)</th><th>end</th></tr>
{% for r in s.absent.per_episode %}<tr class="{{ 'ok' if r.correct else 'fail' }}"><td>{{ r.episode }}</td>
<td>{{ r.seed|num }}</td><td>{{ r.instruction }}</td><td>{{ 'yes' if r.refused else 'no' }}</td>
<td>{{ 'yes' if r.motion else 'no' }}</td><td>{{ r.predictions }} ({{ r.refused_predictions }})</td>
<td>{{ r.trajectories }}</td><td>{{ r.max_joint_dev_rad|num(4) }}</td><td>{{ r.reason }}</td></tr>
{% endfor %}</table>{% endif %}
</body></html>
"""


def _num(x, nd: int = 2) -> str:
    return "-" if x is None else (f"{x:.{nd}f}" if isinstance(x, float) else str(x))


def _html(summary: dict, rows) -> str:
    """report.html from ``_TEMPLATE`` (jinja2, every value HTML-escaped)."""

    env = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined)
    env.filters["num"] = _num
    meta = [(k, v) for k, v in summary.items()
            if k not in ("per_episode", "artifacts", "time_to_success_s", "ci95") and not isinstance(v, (dict, list))]
    return env.from_string(_TEMPLATE).render(s=summary, meta=meta, rows=rows, arts=summary.get("artifacts", {}))
