"""benchmarks.rotation_tokens (the numbers of docs/pose_tokens.md) runs and measures what it says."""
import json

from benchmarks import rotation_tokens


def test_rotation_token_benchmark_on_a_few_scenes(tmp_path):
    res = rotation_tokens.run(scenes=3, out_dir=str(tmp_path))
    assert json.loads((tmp_path / "rotation_tokens.json").read_text())["scenes"] == 3
    new = res["results"]["euler_ref"]
    for labels in ("objects_canonical", "objects_raw", "hands"):
        m = new[labels]
        assert m["n"] > 0 and m["quant_max_deg"] <= 1.5 + 1e-6      # 3 half bins of 1 degree
        assert m["jump_half"] == 0.0                                  # circular bins: impossible
    assert 0.0 <= new["objects_canonical"]["near_canon"] <= 1.0
