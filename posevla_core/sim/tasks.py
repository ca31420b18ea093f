"""Language tasks, object layouts and success predicates.

Tasks
- ``pick``: "pick up the <color> <shape>"; success: the target's bottom is >= 5 cm above
  the table for 0.5 s (sim time) without a break.
- ``put``: "put the <color> <shape> in the <color> bin"; success: the target's center is
  inside the bin's inner footprint, below the wall top, and at rest.
- ``absent``: a ``pick`` scene, but the instruction names an object that is NOT in it
  ("pick up the yellow cylinder" when there is none; the wording of the training negatives,
  ``instructions.negative_instruction``). The right answer is ``<no_object>`` and no motion:
  the sim has no success predicate for it (``SimEnv.success`` stays false), the evaluator
  judges it from the predictions, the trajectories sent and the joint motion.
Each episode: the target + 2..3 distractors (every (color, shape) appears at most once,
so the instruction is unambiguous); ``put`` also places two bins of different colors.
``objects=N`` (the generalization suite's distractor axis) stages N objects in all: the
episode as drawn without it (same target, instruction, bins and object positions), with
distractors added from a stream of their own (the target's same-color other shape first)
or the last ones dropped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import numpy as np

from posevla_core.instructions import negative_instruction
from posevla_core.sim.mujoco import scene

TASKS = ("pick", "put")            # the families a random episode draws from
ABSENT = "absent"                  # a pick scene + an instruction naming an object not in it
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
OBJECT_CLEARANCE = 0.045   # m: an object's keep-out radius (centers >= 9 cm apart)
BIN_CLEARANCE = scene.BIN_INNER_HALF * 1.45 + 0.01


@dataclass
class EpisodeSpec:
    instruction: str
    task: str
    target: str                      # object body name, e.g. "red_cube"
    container: str | None            # bin body name for "put", else None
    seed: int
    objects: dict = field(default_factory=dict)   # name -> (x, y, yaw)
    bins: dict = field(default_factory=dict)      # name -> (x, y)
    absent: str | None = None        # task "absent": the named object, NOT in the scene (target: a present one)

    @property
    def category(self) -> str:
        return category_of(self.target)


def category_of(name: str) -> str:
    """'red_cube' -> 'red cube'; 'white_bin' -> 'white bin'."""
    return name.replace("_", " ")


@dataclass(frozen=True)
class TaskRequest:
    """What a task string asks the sim to stage: a family (``pick`` / ``put``), optionally a
    fixed target object / bin and the operator's own wording of the instruction."""

    family: str
    target: str | None = None        # "red_cube"
    container: str | None = None     # "white_bin"
    instruction: str | None = None   # kept verbatim as the episode instruction


def parse_task(text: str) -> TaskRequest:
    """A task family ("pick", "put") or a natural-language instruction the sim can stage
    ("pick up the red cube", "put the blue cylinder in the white bin"): one known object
    (color + shape) and, for ``put``, one known bin. ValueError with one clear line otherwise."""
    raw = " ".join(str(text).split())
    low = raw.lower()
    if low in TASKS or low == ABSENT:
        return TaskRequest(low)
    colors = "|".join(scene.COLORS)
    shapes = "|".join(scene.SHAPES)
    bins = "|".join(scene.BIN_COLORS)
    objs = re.findall(rf"\b({colors})\s+({shapes})s?\b", low)
    bin_m = re.findall(rf"\b({bins})\s+(?:bin|box|container)\b", low)
    known = (f"a family ({', '.join(TASKS + (ABSENT,))}) or e.g. 'pick up the red cube' / 'put the blue cylinder "
             f"in the white bin' (colors: {', '.join(scene.COLORS)}; shapes: {', '.join(scene.SHAPES)}; "
             f"bins: {', '.join(scene.BIN_COLORS)})")
    if len(objs) != 1:
        why = "names no object the sim has" if not objs else "names more than one object"
        raise ValueError(f"the sim cannot stage {raw!r}: it {why}; use {known}")
    target = f"{objs[0][0]}_{objs[0][1]}"
    if len(bin_m) > 1:
        raise ValueError(f"the sim cannot stage {raw!r}: it names more than one bin; use {known}")
    if bin_m:
        return TaskRequest("put", target, f"{bin_m[0]}_bin", raw)
    if re.search(r"\b(in|into|inside|onto)\b", low):
        raise ValueError(f"the sim cannot stage {raw!r}: it names no bin the sim has; use {known}")
    return TaskRequest("pick", target, None, raw)


def check_objects(n) -> int | None:
    """``objects`` of an episode: None / 0 = as drawn (3-4), else 1 .. 8; ValueError in one line."""
    if n is None or (int(n) == n and int(n) == 0):
        return None
    total = len(scene.object_names())
    if int(n) != n or not 1 <= int(n) <= total:
        raise ValueError(f"objects {n!r}: the number of objects on the table, 1 .. {total} (0 = as drawn, 3-4)")
    return int(n)


def sample_episode(seed: int, task: str | None = None, objects: int | None = None) -> EpisodeSpec:
    """Episode ``seed`` of ``task``: a family, an instruction (``parse_task``) or None (random
    family). ``objects``: that many objects on the table in all (``with_objects``); None = as
    drawn, the same episode as ever."""
    objects = check_objects(objects)
    if objects is not None:
        if task and parse_task(task).family == ABSENT:   # the named object must stay off the table
            return absent_episode(seed, objects)
        return with_objects(sample_episode(seed, task), objects)
    rng = np.random.default_rng(seed)
    if not task:
        task = TASKS[int(rng.integers(len(TASKS)))]
    req = parse_task(task)
    if req.family == ABSENT:
        return absent_episode(seed)
    task = req.family
    names = scene.object_names()
    chosen = [names[i] for i in rng.permutation(len(names))[: 1 + int(rng.integers(2, 4))]]
    if req.target is not None:               # the asked-for object is the target, layout otherwise as usual
        chosen = [req.target] + [n for n in chosen if n != req.target][: len(chosen) - 1]
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
            placed.append((x, y, BIN_CLEARANCE))
        container = bnames[int(rng.integers(2))]
        if req.container is not None and req.container not in bnames:
            bnames[bnames.index(container)] = req.container
            bins[req.container] = bins.pop(container)
            container = req.container
        elif req.container is not None:
            container = req.container
    objects: dict = {}
    y_range = (-0.13, 0.13) if task == "put" else OBJ_Y
    for name in chosen:
        for _ in range(500):
            x, y = float(rng.uniform(*OBJ_X)), float(rng.uniform(*y_range))
            if all(np.hypot(x - px, y - py) > pr + OBJECT_CLEARANCE for px, py, pr in placed):
                break
        else:
            raise RuntimeError(f"could not place {name} (seed {seed})")
        placed.append((x, y, OBJECT_CLEARANCE))
        objects[name] = (x, y, float(rng.uniform(-np.pi, np.pi)))
    obj = category_of(target)
    if task == "pick":
        instruction = PICK_TEMPLATES[int(rng.integers(len(PICK_TEMPLATES)))].format(obj=obj)
    else:
        instruction = PUT_TEMPLATES[int(rng.integers(len(PUT_TEMPLATES)))].format(
            obj=obj, bin=category_of(container))
    if req.instruction is not None:
        instruction = req.instruction
    return EpisodeSpec(instruction, task, target, container, int(seed), objects, bins)


def with_objects(spec: EpisodeSpec, n: int) -> EpisodeSpec:
    """``spec`` with ``n`` objects on the table in all: the target and its first distractors
    keep their places; missing ones are added at random free places (the ``put`` tasks' object
    strip, clear of the bins) from their own stream of the seed, the target's same-color other
    shape first (the hardest distractor), then the rest in random order. ValueError when the
    strip holds no more (``put`` with 8 objects may not fit)."""

    names = list(spec.objects)
    if n <= len(names):
        keep = [spec.target] + [k for k in names if k != spec.target][:n - 1]
        return replace(spec, objects={k: spec.objects[k] for k in keep})
    rng = np.random.default_rng([int(spec.seed), 21])
    color, shape = spec.target.rsplit("_", 1)
    sibling = [f"{color}_{s}" for s in scene.SHAPES if s != shape]
    rest = [k for k in scene.object_names() if k not in spec.objects and k not in sibling]
    add = [k for k in sibling if k not in spec.objects] + [rest[i] for i in rng.permutation(len(rest))]
    placed = [(x, y, OBJECT_CLEARANCE) for x, y, _ in spec.objects.values()]
    placed += [(x, y, BIN_CLEARANCE) for x, y in spec.bins.values()]
    y_range = (-0.13, 0.13) if spec.task == "put" else OBJ_Y
    objects = dict(spec.objects)
    for name in add[:n - len(names)]:
        for _ in range(2000):
            x, y = float(rng.uniform(*OBJ_X)), float(rng.uniform(*y_range))
            if all(np.hypot(x - px, y - py) > pr + OBJECT_CLEARANCE for px, py, pr in placed):
                break
        else:
            raise ValueError(f"objects {n}: no free place for a {len(objects) + 1}th object in episode "
                             f"{spec.seed} ({spec.task}); use fewer")
        placed.append((x, y, OBJECT_CLEARANCE))
        objects[name] = (x, y, float(rng.uniform(-np.pi, np.pi)))
    return replace(spec, objects=objects)


def absent_episode(seed: int, objects: int | None = None) -> EpisodeSpec:
    """Episode ``seed`` of task ``absent``: the pick scene of ``seed`` (with ``objects`` on the
    table, see ``with_objects``), its instruction naming an object category that is not in it."""

    spec = sample_episode(seed, "pick", objects)
    if len(spec.objects) == len(scene.object_names()):
        raise ValueError(f"task absent with objects {len(spec.objects)}: every object is on the table, "
                         "none is left for the instruction to name")
    present = {category_of(n) for n in spec.objects}
    objects = [category_of(n) for n in scene.object_names()]
    instruction = negative_instruction(sorted(present), objects, np.random.default_rng([seed, 1]))
    absent = next(n for n in scene.object_names() if instruction.endswith(category_of(n)))
    return replace(spec, instruction=instruction, task=ABSENT, absent=absent)


def in_bin(obj_pos, bin_pos, margin: float = 0.0) -> bool:
    d = np.abs(np.asarray(obj_pos[:2]) - np.asarray(bin_pos[:2]))
    return bool(np.all(d < scene.BIN_INNER_HALF - margin)
                and obj_pos[2] < bin_pos[2] + scene.BIN_HEIGHT + 0.005)
