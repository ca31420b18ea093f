"""`posevla fit-bins` -> bins JSON -> `posevla train --bins`: the checkpoint's config.json
carries exactly those bins; a fine-tune (--init) refuses different ones."""
from __future__ import annotations

import json
from test.helpers.datagen import write_grounding, write_motion

import numpy as np
import pytest
import yaml

from posevla_core.config import TokenizerConfig
from posevla_core.data.sources import SourceConfig, load_samples
from posevla_core.policies.small.configuration import PoseVLAConfig
from posevla_ros.cli import main

TINY = PoseVLAConfig.tiny().to_dict()


@pytest.fixture
def data(tmp_path):
    return write_grounding(tmp_path / "g", 10), write_motion(tmp_path / "m", 8, seed=1)


def _fit(tmp_path, dirs, name="bins.json") -> tuple[dict, str]:
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps(TINY["tokens"]))
    out = tmp_path / name
    assert main(["fit-bins", "--data", *map(str, dirs), "--out", str(out), "--tokens", str(tokens)]) == 0
    return json.loads(out.read_text()), str(out)


def test_fit_bins_writes_valid_edges(tmp_path, data):
    bins, _ = _fit(tmp_path, data)
    tok = TokenizerConfig(**TINY["tokens"])
    assert set(bins) == {"position_edges", "size_edges", "object_rotation_ref", "hand_rotation_ref"}
    assert len(bins["position_edges"]) == 3
    for e in bins["position_edges"]:
        assert len(e) == tok.position_bins + 1 and np.all(np.diff(e) > 0)
    assert len(bins["size_edges"]) == tok.size_bins + 1 and np.all(np.diff(bins["size_edges"]) > 0)
    for q in (bins["object_rotation_ref"], bins["hand_rotation_ref"]):
        assert np.linalg.norm(q) == pytest.approx(1.0, abs=1e-6)
    TokenizerConfig(**{**TINY["tokens"], **bins})                       # a valid config
    # every object / waypoint position of the data lies inside the fitted edges (nothing clipped)
    fitted = TokenizerConfig(**{**TINY["tokens"], **bins})
    for d, stage in zip(data, ("grounding", "motion")):
        for s in load_samples(d, stage, fitted, SourceConfig(negative_fraction=0.0), progress=False):
            for p in [s.target.object_pose.position] + [w.pose.position for w in s.target.waypoints]:
                assert all(e[0] <= v <= e[-1] for v, e in zip(p, bins["position_edges"]))


def test_fit_bins_errors(tmp_path, capsys):
    assert main(["fit-bins", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "b.json")]) == 1
    assert "nope: data directory does not exist" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()
    with pytest.raises(SystemExit):
        main(["fit-bins", "--out", str(tmp_path / "b.json")])            # --data is required
    assert main(["fit-bins", "--data", str(tmp_path), "--out", "x.json", "--tokens", str(tmp_path / "no.json")]) == 1
    assert "no.json" in capsys.readouterr().err


@pytest.mark.slow
def test_train_with_bins_and_init_refuses_others(tmp_path, data, capsys):
    from posevla_core.train.stages import train_main

    bins, path = _fit(tmp_path, data)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({"stage": "motion", "batch_size": 4, "warmup_steps": 1, "eval_every": 0,
                                   "save_every": 0, "max_val_samples": 2, "model": TINY}))
    out = tmp_path / "ckpt"
    assert main(["train", "--stage", "motion", "--data", str(data[1]), "--out", str(out), "--steps", "2",
                 "--config", str(cfg), "--bins", path]) == 0
    tokens = json.loads((out / "config.json").read_text())["posevla"]["tokens"]
    for k, v in bins.items():
        np.testing.assert_allclose(tokens[k], v, atol=0)
    assert tokens["categories"] == TINY["tokens"]["categories"]          # merged, not replaced
    # fine-tuning with the same bins is fine; other bins are refused before any training
    train_main("motion", data[1], str(tmp_path / "ft"), init=str(out), steps=1, config_file=str(cfg),
               bins=path, progress=False)
    other, other_path = _fit(tmp_path, [data[0]], "other.json")
    assert other["position_edges"] != bins["position_edges"]
    with pytest.raises(ValueError, match="other bins.*position_edges"):
        train_main("motion", data[1], str(tmp_path / "ft2"), init=str(out), steps=1, config_file=str(cfg),
                   bins=other_path, progress=False)
    assert main(["train", "--stage", "motion", "--data", str(data[1]), "--out", str(tmp_path / "ft2"), "--steps", "1",
                 "--config", str(cfg), "--init", str(out), "--bins", other_path]) == 1
    assert "was trained with other bins" in capsys.readouterr().err
    assert not (tmp_path / "ft2" / "config.json").exists()


@pytest.mark.slow
def test_training_logs_clipped_fraction_and_warns(tmp_path, data, capfd):
    """Bins far too narrow for the data: every object z is clipped -> logged per group at step 0
    and a WARNING; with bins fitted to the data nothing is clipped and nothing is warned."""
    from posevla_core.train.stages import train_main

    tokens = dict(TINY["tokens"], position_min=[-0.6, -0.6, 0.2], position_max=[0.6, 0.6, 0.5])  # data z: 0.6..1.0
    kw = dict(steps=1, batch_size=4, warmup_steps=1, eval_every=0, save_every=0, max_val_samples=1,
              val_fraction=0.0, progress=False)
    out = tmp_path / "narrow"
    train_main("grounding", data[0], str(out), model={**TINY, "tokens": tokens}, **kw)
    rec = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert rec["step"] == 0 and rec["clipped/object_position"] == 1.0 and rec["clipped/object_position_targets"] == 10
    assert rec["clipped/box"] == 0.0 and rec["clipped/object_size"] == 0.0
    assert rec["clipped/waypoint_position_targets"] == 0                    # grounding data: no waypoints
    assert rec["clipped/top_fields"] == {"object.z": 10}
    err = capfd.readouterr().err
    assert "WARNING: 100.0 % of the object position targets" in err and "posevla fit-bins" in err
    bins, path = _fit(tmp_path, data)
    out = tmp_path / "fitted"
    train_main("motion", data[1], str(out), model=TINY, bins=path, **kw)
    rec = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert rec["clipped/waypoint_position_targets"] == 8 and rec["clipped/object_position_targets"] == 8
    assert all(rec[f"clipped/{g}"] == 0.0 for g in ("box", "object_position", "object_size", "waypoint_position"))
    assert "WARNING" not in capfd.readouterr().err
