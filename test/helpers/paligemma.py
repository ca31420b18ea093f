"""The PaliGemma tests' fixtures: the tiny random PaliGemma directory (the module-scoped ``base``
fixture), a Pose-VLA built on it (``build``, with the ``TOKENS`` config), its small
random ``frame``s, a labeled ``target``, the instruction ``INSTR``, and ``fit_one_frame``
(optimizer steps on one labeled frame).

Used by test/unit/posevla_core/policies/paligemma/test_paligemma.py and
test/integration/test_paligemma_training.py (which import the ``base`` fixture by name)."""
from test.helpers.models import random_frame
from test.helpers.tiny_vlm import make_tiny_paligemma

import numpy as np
import pytest
import torch

from posevla_core.config import TokenizerConfig
from posevla_core.policies.paligemma.configuration import VLMConfig
from posevla_core.policies.paligemma.modeling import PaliGemmaPoseVLA
from posevla_core.poses import Pose, PoseTarget, Waypoint

TOKENS = TokenizerConfig(box_bins=1024, num_waypoints=1, position_bins=32, rotation_bins=31)
INSTR = "pick up the red cube"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_tiny_paligemma(tmp_path_factory.mktemp("paligemma"))


def build(base, **kw):
    torch.manual_seed(0)
    return PaliGemmaPoseVLA.from_base(base, VLMConfig(tokens=TOKENS, **kw))


def frame(seed=0, H=30, W=40):
    return random_frame(seed, H, W, f=40.0, depth=(0.5, 1.0))


def target(u=0.3, v=0.6):
    pose = Pose([0.05, -0.02, 0.7], [0, 0, 0, 1])
    return PoseTarget("cube", (u, v), pose, [Waypoint(Pose([0.0, 0.1, 0.6], [0, 0, 0, 1]), 0.0)],
                      box_xyxy=(u - 0.05, v - 0.05, u + 0.05, v + 0.05), size=np.full(3, 0.05))


def fit_one_frame(m, opt, steps=15) -> list[float]:
    """``steps`` optimizer steps on one labeled frame; the losses."""
    rgb, depth, K = frame()
    b = m.processor.collate([m.processor.make_example(rgb, depth, K, INSTR, target())])
    losses = []
    for _ in range(steps):
        loss, _ = m.compute_loss(b)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses
