"""The typed parameter schema and its strict checks: ``ParamSpec`` (one parameter: type,
range, list length, choices) and ``check_value`` (a value from YAML, a launch file or a
``-p NAME=VALUE`` override -> the typed value, or a ``ConfigError`` that says in one line
what is wrong). Shared by the node tables in ``params``, the robot configs and the CLI.

Why strict: these are safety settings (workspace, joint jumps, the end-effector link). A
mistyped key or a value of the wrong type that silently falls back to a default moves the
robot under limits nobody chose, so every such mistake stops the start instead.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any, Iterable

import yaml


class ConfigError(ValueError):
    """A bad parameter or robot config: the message is one line that names the key, what
    was given and what is expected. Node executables and the CLI print it and exit 1."""


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter: its type is the type of ``default`` (``item`` gives the
    element type of a list whose default may be empty), ``lo``/``hi`` an inclusive range
    for numbers, ``length`` a fixed list length, ``choices`` the allowed values."""

    name: str
    default: Any
    description: str
    lo: float | None = None
    hi: float | None = None
    read_only: bool = False
    item: type | None = None
    length: int | None = None
    choices: tuple = ()

    @property
    def item_type(self) -> type:
        if self.item is not None:
            return self.item
        return type(self.default[0]) if isinstance(self.default, list) and self.default else str


_TYPE_NAMES = {bool: "a bool (true/false)", int: "an integer", float: "a number", str: "a string"}


def parse_text(text: str) -> Any:
    """A ``-p NAME=VALUE`` value as ROS parses it (YAML scalar or flow list): "0.5" -> 0.5,
    "true" -> True, "[1, 2]" -> [1, 2]; anything YAML cannot read stays the string."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_override(text: str) -> tuple[str, Any]:
    """``-p NAME:=VALUE`` (ROS syntax; ``NAME=VALUE`` too) -> (NAME, parsed VALUE)."""
    name, sep, value = text.partition(":=")
    if not sep:
        name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ConfigError(f"-p {text!r}: expected NAME:=VALUE (e.g. -p dry_run:=true)")
    return name, parse_text(value)


def _scalar(value: Any, typ: type) -> Any:
    if typ is bool:
        ok = isinstance(value, bool)
    elif typ is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif typ is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ConfigError(f"expected {_TYPE_NAMES[typ]}, got {value!r}")
    return typ(value)


def check_value(spec: ParamSpec, value: Any) -> Any:
    """``value`` typed like ``spec`` (ints are accepted for floats; a string is parsed as a
    ``-p`` value only for non-string parameters), or ConfigError naming the parameter."""
    try:
        if isinstance(value, str) and not isinstance(spec.default, str):
            value = parse_text(value)
        if isinstance(spec.default, list):
            if value is None:          # rclpy / rcl: an empty YAML list arrives untyped
                value = []
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"expected a list of {_TYPE_NAMES[spec.item_type].split(' ', 1)[1]}s, "
                                  f"got {value!r}")
            out = [_scalar(v, spec.item_type) for v in value]
            if spec.length is not None and len(out) != spec.length:
                raise ConfigError(f"expected {spec.length} values, got {len(out)}: {list(value)!r}")
        else:
            out = _scalar(value, type(spec.default))
        if spec.lo is not None and not isinstance(out, list) and not (spec.lo <= out <= spec.hi):
            raise ConfigError(f"{out!r} is outside [{spec.lo}, {spec.hi}]")
        if spec.choices and out not in spec.choices:
            raise ConfigError(f"{out!r} is not one of {' | '.join(map(str, spec.choices))}")
    except ConfigError as e:
        raise ConfigError(f"parameter {spec.name}: {e}") from None
    return out


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'ee_link'?)' for the closest known name, else ''."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    if not close and "." in name:   # a nested key: compare its last part
        tails = {k.rsplit(".", 1)[-1]: k for k in known}
        close = [tails[c] for c in difflib.get_close_matches(name.rsplit(".", 1)[-1], list(tails), n=1)]
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_key_error(name: str, known: Iterable[str], where: str) -> ConfigError:
    return ConfigError(f"{where}: unknown parameter {name!r}{did_you_mean(name, known)}")


def check_min_max(values: dict[str, Any], where: str) -> None:
    """Every ``X.min`` / ``X.max`` pair (the workspace box) must have min < max on each axis."""
    for key in [k for k in values if k.endswith(".min")]:
        hi_key = key[:-4] + ".max"
        lo, hi = values[key], values.get(hi_key)
        if hi is None or not isinstance(lo, list) or not isinstance(hi, list):
            continue
        bad = [i for i, (a, b) in enumerate(zip(lo, hi)) if not a < b]
        if bad:
            axes = ", ".join("xyz"[i] if len(lo) == 3 else str(i) for i in bad)
            raise ConfigError(f"{where}: {key} {lo} must be < {hi_key} {hi} on every axis (not on {axes})")
