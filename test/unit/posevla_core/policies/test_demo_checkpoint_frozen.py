"""The shipped checkpoint (checkpoints/demo) predicts EXACTLY the token ids recorded when it
was trained (pose-token format 2, test/data/demo_checkpoint_tokens.json) on fixed inputs: the
sim demo's success rate rests on these predictions, so a change of preprocessing, decoding
or grammar that alters them must be deliberate (retrain + re-record)."""
import json
from test.helpers.paths import REPO, TEST_DATA

import numpy as np

CKPT = REPO / "checkpoints" / "demo"


def fixed_inputs():
    """Three frames: 4:3 with depth, square with depth, 4:3 without depth."""
    out = []
    for seed, (H, W), color, with_depth, instr in [
            (0, (480, 640), (220, 30, 30), True, "pick up the red cube"),
            (1, (224, 224), (30, 30, 220), True, "put the blue cylinder in the white bin"),
            (2, (480, 640), (30, 200, 30), False, "pick up the green cube")]:
        rng = np.random.default_rng(seed)
        rgb = np.full((H, W, 3), 120, np.uint8) + rng.integers(0, 20, (H, W, 3), dtype=np.uint8)
        y, x = int(rng.integers(H // 4, H // 2)), int(rng.integers(W // 4, W // 2))
        rgb[y:y + H // 8, x:x + H // 8] = color
        depth = None
        if with_depth:
            depth = np.full((H, W), 1.0, np.float32)
            depth[y:y + H // 8, x:x + H // 8] = 0.9
        K = np.array([[0.9 * W, 0, W / 2 - 0.5], [0, 0.9 * W, H / 2 - 0.5], [0, 0, 1]])
        out.append((rgb, depth, K, instr))
    return out


def test_shipped_checkpoint_predicts_the_recorded_tokens():
    from posevla_core.paths import architecture_of
    from posevla_core.policies.factory import load_policy
    from posevla_core.policies.small.configuration import PoseVLAConfig

    meta = json.loads((CKPT / "config.json").read_text())
    assert architecture_of(CKPT) == "small"
    assert PoseVLAConfig.from_dict(meta["posevla"]).geometry.use_rays is True     # the paper's ray prior
    model = load_policy(CKPT, device="cpu")
    expected = json.loads((TEST_DATA / "demo_checkpoint_tokens.json").read_text())
    got = [model.predict(*x).token_ids for x in fixed_inputs()]
    assert got == expected
