"""The sim demo model's configuration: the default small model with our MuJoCo scene's object
categories and symmetries, and the bins fitted to its training data. What ``make checkpoint``
trains and what ``posevla fit-bins`` fits to when given no token file."""
from __future__ import annotations

from posevla_core.policies.small.configuration import PoseVLAConfig
from posevla_core.sim import tasks
from posevla_core.sim.mujoco import scene


def sim_categories() -> list[str]:
    return [tasks.category_of(n) for n in scene.object_names() + scene.bin_names()] + ["object"]


def sim_symmetries() -> dict[str, str]:
    return {tasks.category_of(n): scene.symmetry_of(n) for n in scene.object_names() + scene.bin_names()}


def model_overrides(bins: dict | None = None) -> dict:
    """The demo model: the default PoseVLAConfig with the sim's object categories and their
    symmetries, and the bins fitted to the training data (``bins``, tokens.fit_bins)."""
    d = PoseVLAConfig().to_dict()
    d["tokens"]["categories"] = sim_categories()
    d["tokens"]["symmetries"] = sim_symmetries()
    d["tokens"].update(bins or {})
    d["geometry"]["use_rays"] = True       # the paper's ray prior: K counts even without depth
    # 4.5 cm objects are ~10 px in the 224 px sim camera: keep the resolution (192 px input)
    # and the token count (16 px patches -> 12 x 12) of the default model.
    # The same objects get a 224 px glimpse (ObjectGlimpse) for their yaw and shape, and the
    # heatmap a presence loss, so that "is it there at all" has a signal of its own.
    # Every sim category is 4-fold (cube, square bin) or fully symmetric (cylinder) about its
    # z axis, so the glimpse regresses 4 * yaw: continuous where a cube's canonical yaw wraps.
    return {"tokens": d["tokens"], "geometry": d["geometry"], "image_size": 192, "patch_size": 16,
            "glimpse_size": 224, "glimpse_yaw_order": 4, "presence_loss_weight": 0.5,
            # Refusals: P(<no_object>) >= 0.5, or the object verifier (trained last, train/verifier.py)
            # rejecting every proposal. Chosen on validation scenes (seeds 2000+), docs/pose_tokens.md.
            "no_object_threshold": 0.5, "verify_threshold": 0.5}
