"""Instructions that the training data and the sim's absent-object episodes share: the
negative instruction, naming a category that is not in the scene (right answer: <no_object>).
Numpy only, so the sim's task module (imported by launch graphs) stays light."""
from __future__ import annotations

import numpy as np

NEAR_MISS_FRACTION = 0.5   # negative instructions that share a color with an object in view


def negative_instruction(scene_categories: list[str] | None, categories: list[str],
                         rng: np.random.Generator) -> str | None:
    """An instruction naming a category that is NOT in the scene (answered ``<no_object>``),
    or None when the sample does not list its scene or every category is present. Objects
    are picked up, containers found (the generic "object" category is never named).

    Half of them (when the scene allows) are near misses: the absent category shares its
    first word (a color) with an object in view, e.g. "the red cylinder" beside a red cube.
    Those are the ones a model that matches only one attribute gets wrong; uniform draws
    alone mostly name a color that is nowhere in the image."""
    if scene_categories is None:
        return None
    absent = [c for c in categories if c not in scene_categories and c != "object"]
    if not absent:
        return None
    colors = {c.split()[0] for c in scene_categories if " " in c}
    near = [c for c in absent if " " in c and c.split()[0] in colors]
    pool = near if near and rng.random() < NEAR_MISS_FRACTION else absent
    c = pool[int(rng.integers(len(pool)))]
    return f"find the {c}" if c.endswith("bin") else f"pick up the {c}"
