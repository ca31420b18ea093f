"""Language tasks, object layouts and success predicates.

Tasks
- ``pick``: "pick up the <color> <shape>"; success: the target's bottom is >= 5 cm above
  the table for 0.5 s (sim time) without a break.
- ``put``: "put the <color> <shape> in the <color> bin"; success: the target's center is
  inside the bin's inner footprint, below the wall top, and at rest.
Each episode: the target + 2..3 distractors (every (color, shape) appears at most once,
so the instruction is unambiguous); ``put`` also places two bins of different colors.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from posevla_core.sim import scene

TASKS = ("pick", "put")
PICK_TEMPLATES = ("pick up the {obj}", "lift the {obj}", "grab the {obj} and lift it")
PUT_TEMPLATES = ("put the {obj} in the {bin}", "place the {obj} into the {bin}",
                 "move the {obj} into the {bin}")
LIFT_HEIGHT = 0.05      # m, bottom above the table
LIFT_HOLD_S = 0.5

# reachable table region for objects (base frame, top-down grasps)
OBJ_X = (0.35, 0.62)
OBJ_Y = (-0.25, 0.25)
BIN_X = (0.42, 0.6)
BIN_Y_ABS = (0.2, 0.32)


@dataclass
class EpisodeSpec:
    instruction: str
    task: str
    target: str                      # object body name, e.g. "red_cube"
    container: str | None            # bin body name for "put", else None
    seed: int
    objects: dict = field(default_factory=dict)   # name -> (x, y, yaw)
    bins: dict = field(default_factory=dict)      # name -> (x, y)

    @property
    def category(self) -> str:
        return category_of(self.target)


def category_of(name: str) -> str:
    """'red_cube' -> 'red cube'; 'white_bin' -> 'white bin'."""
    return name.replace("_", " ")


def sample_episode(seed: int, task: str | None = None) -> EpisodeSpec:
    rng = np.random.default_rng(seed)
    if not task:
        task = TASKS[int(rng.integers(len(TASKS)))]
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r} (known: {TASKS})")
    names = scene.object_names()
    chosen = [names[i] for i in rng.permutation(len(names))[: 1 + int(rng.integers(2, 4))]]
    target = chosen[0]
    bins: dict = {}
    container = None
    placed: list[tuple[float, float, float]] = []   # x, y, radius
    if task == "put":
        bnames = [scene.bin_names()[i] for i in rng.permutation(len(scene.bin_names()))[:2]]
        side = 1 if rng.random() < 0.5 else -1
        for k, b in enumerate(bnames):
            s = side if k == 0 else -side
            x = float(rng.uniform(*BIN_X))
            y = float(s * rng.uniform(*BIN_Y_ABS))
            bins[b] = (x, y)
            placed.append((x, y, scene.BIN_INNER_HALF * 1.45 + 0.01))
        container = bnames[int(rng.integers(2))]
    objects: dict = {}
    y_range = (-0.13, 0.13) if task == "put" else OBJ_Y
    for name in chosen:
        for _ in range(500):
            x, y = float(rng.uniform(*OBJ_X)), float(rng.uniform(*y_range))
            if all(np.hypot(x - px, y - py) > pr + 0.045 for px, py, pr in placed):
                break
        else:
            raise RuntimeError(f"could not place {name} (seed {seed})")
        placed.append((x, y, 0.045))
        objects[name] = (x, y, float(rng.uniform(-np.pi, np.pi)))
    obj = category_of(target)
    if task == "pick":
        instruction = PICK_TEMPLATES[int(rng.integers(len(PICK_TEMPLATES)))].format(obj=obj)
    else:
        instruction = PUT_TEMPLATES[int(rng.integers(len(PUT_TEMPLATES)))].format(
            obj=obj, bin=category_of(container))
    return EpisodeSpec(instruction, task, target, container, int(seed), objects, bins)


def in_bin(obj_pos, bin_pos, margin: float = 0.0) -> bool:
    d = np.abs(np.asarray(obj_pos[:2]) - np.asarray(bin_pos[:2]))
    return bool(np.all(d < scene.BIN_INNER_HALF - margin)
                and obj_pos[2] < bin_pos[2] + scene.BIN_HEIGHT + 0.005)
