"""Loss / metric curves from metrics.jsonl (PNG, headless matplotlib)."""
from __future__ import annotations

import json
from pathlib import Path

VAL_KEYS = ("val/center_err_m", "val/wp_pos_err_m", "val/category_acc", "val/gripper_acc")


def plot_curves(jsonl: str | Path, png: str | Path, title: str = "", keys: tuple[str, ...] = VAL_KEYS,
                right_title: str = "validation (errors in m, accuracies in [0, 1])") -> Path | None:
    """Train / validation loss (log scale) and, beside it, the validation ``keys`` present."""
    # matplotlib: heavy, only the plots need it
    import matplotlib

    matplotlib.use("Agg")
    # matplotlib: heavy, only the plots need it
    import matplotlib.pyplot as plt

    rows = [json.loads(ln) for ln in Path(jsonl).read_text().splitlines() if ln.strip()]
    train = [r for r in rows if "loss" in r]
    val = [r for r in rows if "val/val_loss" in r]
    if not train:
        return None
    keys = [k for k in keys if any(k in r for r in val)]
    fig, axes = plt.subplots(1, 1 + bool(keys), figsize=(11 if keys else 6, 4))
    axes = list(axes) if keys else [axes]
    ax = axes[0]
    ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss", lw=1)
    if val:
        ax.plot([r["step"] for r in val], [r["val/val_loss"] for r in val], "o-", label="val loss")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title(f"{title} loss")
    ax.grid(alpha=0.3)
    ax.legend()
    if keys:
        ax = axes[1]
        for k in keys:
            pts = [(r["step"], r[k]) for r in val if k in r]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=k.split("/", 1)[1])
        ax.set_xlabel("step")
        ax.set_title(right_title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return Path(png)
