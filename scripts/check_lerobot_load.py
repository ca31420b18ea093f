"""Load a dataset written by posevla_core.data.LeRobotWriter with the real ``lerobot`` package.

Run with the interpreter of .venv-lerobot (torch 2.14.1 + lerobot; see requirements/lerobot.txt):
    .venv-lerobot/bin/python scripts/check_lerobot_load.py DATASET_DIR
Exits non-zero with the reason when lerobot cannot read it.
"""
import json
import sys
from pathlib import Path


def main(root: str) -> int:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    info = json.loads((Path(root) / "meta" / "info.json").read_text())
    ds = LeRobotDataset(info.get("repo_id", "posevla/demos"), root=root)
    assert ds.num_episodes == info["total_episodes"], (ds.num_episodes, info["total_episodes"])
    assert len(ds) == info["total_frames"], (len(ds), info["total_frames"])
    first, last = ds[0], ds[len(ds) - 1]
    for item in (first, last):
        assert isinstance(item["task"], str) and item["task"], item.get("task")
        img = item["observation.images.color"]
        assert img.ndim == 3 and img.shape[0] == 3, tuple(img.shape)
        assert 0.0 <= float(img.min()) and float(img.max()) <= 1.0
    shapes = {k: tuple(v.shape) for k, v in first.items() if hasattr(v, "shape")}
    print(json.dumps({"episodes": ds.num_episodes, "frames": len(ds), "fps": ds.fps,
                      "task0": first["task"], "shapes": {k: list(s) for k, s in shapes.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
