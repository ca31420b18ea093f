"""What every policy's checkpoint loading checks (policies/base.py PosePolicy), for each
architecture and head: pickle weight files are refused, and a tensor whose shape differs from
the model built from config.json is a clear error that names it."""
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from posevla_core.policies.factory import load_policy
from posevla_core.policies.flow.modeling import EXPERT_WEIGHTS, FlowPolicy
from posevla_core.policies.small.configuration import PoseVLAConfig
from posevla_core.policies.small.modeling import PoseVLA
from test.helpers.tiny_vlm import make_tiny_vlm_checkpoint


def small(root: Path) -> Path:
    torch.manual_seed(0)
    return PoseVLA(PoseVLAConfig.tiny()).save_pretrained(root / "small")


def flow(root: Path) -> Path:
    torch.manual_seed(0)
    expert = FlowPolicy.attach(PoseVLA(PoseVLAConfig.tiny()), {"horizon": 4, "width": 32, "heads": 2})
    return expert.save_pretrained(root / "flow")


def paligemma(root: Path) -> Path:
    return make_tiny_vlm_checkpoint(root / "paligemma", num_waypoints=2)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("ck")
    return {"small": small(root), "flow": flow(root), "paligemma": paligemma(root)}


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("kind,weights,pickle", [("small", "model.safetensors", "pytorch_model.bin"),
                                                 ("paligemma", "model.safetensors", "model.pt"),
                                                 ("flow", "model.safetensors", "model.ckpt"),
                                                 ("flow", EXPERT_WEIGHTS, "expert.pth")])
def test_pickle_weights_are_refused(checkpoints, tmp_path, kind, weights, pickle):
    d = copy(checkpoints[kind], tmp_path / kind)
    torch.save(load_file(str(d / weights)), d / pickle)
    (d / weights).unlink()
    with pytest.raises(ValueError, match=f"pickle weights \\['{pickle}'\\]"):
        load_policy(d, device="cpu")


@pytest.mark.parametrize("kind,weights,prefix", [("small", "model.safetensors", ""),
                                                 ("paligemma", "model.safetensors", ""),
                                                 ("flow", "model.safetensors", "backbone."),
                                                 ("flow", EXPERT_WEIGHTS, "expert.")])
def test_a_tensor_of_another_shape_is_named(checkpoints, tmp_path, kind, weights, prefix):
    d = copy(checkpoints[kind], tmp_path / kind)
    state = load_file(str(d / weights))
    name = sorted(k for k, v in state.items() if v.ndim == 2)[0]
    state[name] = torch.zeros(state[name].shape[0] + 1, state[name].shape[1])
    save_file(state, str(d / weights), metadata={"format": "pt"})
    with pytest.raises(ValueError, match=f"shapes differ.*{prefix}{name}"):
        load_policy(d, device="cpu")


@pytest.mark.parametrize("kind", ["small", "paligemma", "flow"])
def test_missing_and_unexpected_tensors_are_named(checkpoints, tmp_path, kind):
    d = copy(checkpoints[kind], tmp_path / kind)
    state = load_file(str(d / "model.safetensors"))
    name = sorted(state)[0]
    state["bogus.weight"] = state.pop(name)
    save_file(state, str(d / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ValueError, match="does not match its config: missing .*unexpected .*bogus.weight"):
        load_policy(d, device="cpu")


@pytest.mark.parametrize("kind", ["small", "paligemma", "flow"])
def test_round_trip_keeps_every_tensor(checkpoints, kind):
    a = load_policy(checkpoints[kind], device="cpu")
    out = a.save_pretrained(checkpoints[kind].parent / f"{kind}-again")
    b = load_policy(out, device="cpu")
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
