"""Where the package's files live: config/, launch/ and the shipped checkpoint.

``share_dir()`` is the one function that decides, for every caller (the CLI, the nodes,
the launch files, training's config/train defaults, the benchmarks). It needs no
environment variable and no ROS: it works from any directory after ``make setup``
(editable checkout), ``pip install .`` (``setup.py`` ships the files as ``data_files``
under ``<prefix>/share/posevla_ros``, the ament_python layout), ``pip install --target
DIR`` and colcon. It lives in posevla_core (which never imports rclpy) so that training
finds the same files as the nodes.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

PACKAGE = "posevla_ros"
REPO_ROOT = Path(__file__).resolve().parent.parent
# A checkpoint's config.json: read here, without torch, so that graphs / launch files can ask a
# checkpoint's head before any model code loads (posevla_core.policies.base re-exports these).
CONFIG_FILE = "config.json"
DEFAULT_ARCHITECTURE = "small"
HEADS, DEFAULT_HEAD = ("tokens", "flow"), "tokens"


def _share_candidates() -> list[Path]:
    """Where config/, launch/ and checkpoints/ may live, in order: this checkout (source
    tree or editable install); ``share/posevla_ros`` next to the installed package, up to
    the install prefix (``pip install --target DIR`` -> DIR; a venv or colcon prefix is
    three levels above lib/pythonX.Y/site-packages; the copy that belongs to this code wins
    over any other install); the ament index; the running Python's prefix."""
    out = [REPO_ROOT] + [d / "share" / PACKAGE for d in (REPO_ROOT, *REPO_ROOT.parents[:3])]
    try:
        # ROS: present only in a sourced ROS 2 install
        from ament_index_python.packages import get_package_share_directory

        out.append(Path(get_package_share_directory(PACKAGE)))
    except Exception:  # noqa: BLE001 - no ament index entry: try the prefix
        pass
    return out + [Path(sys.prefix) / "share" / PACKAGE]


def share_dir() -> Path:
    """The package's share directory (the one function that decides where config/,
    launch/ and checkpoints/ are): the first of ``_share_candidates`` that holds
    config/robots. Raises a clear error when none does."""
    for d in _share_candidates():
        if (d / "config" / "robots").is_dir():
            return d
    raise FileNotFoundError(f"posevla_ros share directory not found (looked in "
                            f"{[str(d) for d in _share_candidates()]}); install with `make setup`, "
                            f"colcon, or `pip install .`")


def default_checkpoint() -> Path:
    """The shipped demo checkpoint directory."""
    return share_dir() / "checkpoints" / "demo"


def resolve_checkpoint(value: str) -> Path:
    """The checkpoint directory for a ``checkpoint`` value: empty = the shipped one; a relative
    path is relative to the current directory, else to the share directory (so
    ``checkpoints/demo`` names the shipped checkpoint from anywhere). Clear error if absent."""
    path = Path(value).expanduser() if value else default_checkpoint()
    if value and not path.is_dir() and not path.is_absolute() and (share_dir() / path).is_dir():
        path = share_dir() / path
    if not path.is_dir():
        hint = (" (the shipped demo checkpoint is missing: run `make checkpoint` or pass "
                "checkpoint:=/path/to/ckpt)") if not value else ""
        raise FileNotFoundError(f"checkpoint directory {path} does not exist{hint}")
    return path


def read_meta(directory: str | Path) -> dict:
    """The checkpoint's config.json ({} when there is none: the loader then reports what is missing)."""
    f = Path(directory) / CONFIG_FILE
    return json.loads(f.read_text()) if f.is_file() else {}


def architecture_of(directory: str | Path) -> str:
    return read_meta(directory).get("architecture", DEFAULT_ARCHITECTURE)


def head_of(directory: str | Path | None) -> str:
    """The checkpoint's head ("tokens" for None and for configs without the key)."""
    return read_meta(directory).get("head", DEFAULT_HEAD) if directory else DEFAULT_HEAD
