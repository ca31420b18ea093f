"""`make bench-gpu` refuses politely without CUDA, and its measuring code runs end to end on
the CPU with the tiny shape (so the script is not first run, and found broken, on a GPU)."""
import json

import pytest
import torch
from benchmarks import bench_gpu


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_refuses_without_cuda(capsys):
    """Without CUDA, `make bench-gpu` exits 1 with a one-line "no CUDA device" message."""
    assert bench_gpu.main([]) == 1
    assert "no CUDA device" in capsys.readouterr().err


def test_tiny_shape_runs_on_cpu(tmp_path):
    """The tiny shape runs every measurement on the CPU and saves them in bench_gpu.json."""
    res = bench_gpu.run(tmp_path, train_steps=2, batch=2, repeats=2, lora_rank=0, shape="tiny", device="cpu")
    saved = json.loads((tmp_path / "bench_gpu.json").read_text())
    assert saved["predict"]["pose_tokens"] == 57 and len(res["train"]["losses"]) == 2
    assert saved["flow"]["horizon"] == 16 and saved["flow"]["batch2_chunks_per_s"] > 0
    assert 0 < res["trainable_parameters"] < res["parameters"]


@pytest.mark.gpu
@pytest.mark.slow
def test_tiny_shape_runs_on_cuda(tmp_path):
    """The same measuring code on a CUDA device (bf16, synchronised timings, peak memory): it
    reports the device's name and a finite peak memory. Skipped without CUDA."""
    res = bench_gpu.run(tmp_path, train_steps=2, batch=2, repeats=2, lora_rank=0, shape="tiny", device="cuda")
    assert res["device"] == torch.cuda.get_device_name(0) and len(res["train"]["losses"]) == 2
    assert json.loads((tmp_path / "bench_gpu.json").read_text())["flow"]["batch2_chunks_per_s"] > 0
