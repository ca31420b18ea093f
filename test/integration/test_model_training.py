"""Training steps of the small model: the loss masks grounding-only targets and falls on a fixed batch."""
import numpy as np
import torch
from posevla_core.policies.small.configuration import PoseVLAConfig
from posevla_core.policies.small.modeling import PoseVLA
from posevla_core.poses import Pose, PoseTarget, Waypoint
from test.helpers.models import frame


def test_loss_masks_grounding_only_targets_and_decreases():
    torch.manual_seed(0)
    m = PoseVLA(PoseVLAConfig.tiny())
    rgb, depth, K = frame(6)
    pose = Pose([0.05, 0.02, 0.9], [0, 0, 0, 1])
    box, size = (0.45, 0.35, 0.55, 0.45), np.full(3, 0.05)
    full = PoseTarget("cube", (0.5, 0.4), pose, [Waypoint(pose, 1.0), Waypoint(pose, 0.0)], box_xyxy=box, size=size)
    ground = PoseTarget("bin", (0.2, 0.4), pose, box_xyxy=box, size=size)
    exs = [m.make_example(rgb, depth, K, "pick up the red cube", full),
           m.make_example(rgb, depth, K, "find the bin", ground)]
    assert (exs[1]["labels"] == -100).sum() == m.tokenizer.seq_len - m.tokenizer.num_grounding_steps
    batch = m.collate(exs)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    first = None
    # Train to a fit (every supervised token is the argmax under teacher forcing), not for a
    # fixed step count: after a fixed 60 steps the loss was mid-bump on some CPUs (other
    # float kernels) and the decoded z was 3 bins off.
    for _ in range(300):
        loss, logs = m.compute_loss(batch)
        first = first if first is not None else loss.item()
        if logs["token_acc"] == 1.0 and loss.item() < 0.05 * first:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert logs["token_acc"] == 1.0 and loss.item() < 0.05 * first, logs
    # teacher-forced argmax right at every step => greedy decoding reproduces the labels
    p = m.predict(rgb, depth, K, "pick up the red cube")
    assert p.token_ids == batch["labels"][0].tolist()
    assert p.category == "cube"
    half_bin = np.array([m.tokenizer.bin_width("position", a, pose.position[a]) for a in range(3)]) / 2
    assert np.all(np.abs(p.object_pose.position - pose.position) <= half_bin + 1e-9)
