"""Training steps of the PaliGemma backbone: the loss falls with full fine-tuning and frozen vision; LoRA trains the adapters and the new token rows only."""
import pytest
import torch
from posevla_core.policies.factory import load_policy
from test.helpers.paligemma import INSTR, base, build, fit_one_frame, frame  # noqa: F401 - fixtures


def test_loss_falls_with_full_finetuning_and_frozen_vision(base):
    m = build(base, freeze_vision=True, gradient_checkpointing=True).train()
    assert not any(p.requires_grad for p in m.vlm.model.vision_tower.parameters())
    losses = fit_one_frame(m, torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=3e-3))
    assert losses[-1] < 0.5 * losses[0], losses


def test_lora_trains_adapters_and_new_rows_only(base, tmp_path):
    pytest.importorskip("peft")
    m = build(base, lora_rank=4).train()
    names = {n for n, p in m.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in names) and not any(".q_proj.base_layer" in n for n in names)
    emb = m.vlm.get_input_embeddings().weight
    old = emb.detach().clone()
    losses = fit_one_frame(m, torch.optim.AdamW(m.param_groups(0.01), lr=3e-3))
    assert losses[-1] < 0.7 * losses[0], losses
    new = m.id_map[3:]      # everything after pad/bos/eos: categories, <loc> boxes, pose bins
    box = m.tokenizer.blocks["box"]
    pretrained = torch.ones(emb.shape[0], dtype=torch.bool)
    pretrained[new] = False
    pretrained[m.id_map[box.start:box.stop]] = True
    assert torch.equal(emb.detach()[pretrained], old[pretrained])        # pretrained rows (incl. <loc>) frozen
    assert not torch.equal(emb.detach()[~pretrained], old[~pretrained])   # pose tokens learned
    m.eval()
    rgb, depth, K = frame()
    before = m.predict(rgb, depth, K, INSTR).token_ids
    m.save_pretrained(tmp_path / "lora")
    m2 = load_policy(tmp_path / "lora", device="cpu")
    assert all(torch.equal(v, m2.state_dict()[k]) for k, v in m.state_dict().items())
    assert m2.predict(rgb, depth, K, INSTR).token_ids == before
