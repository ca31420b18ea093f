"""make_checkpoint's work directory: generated data is reused by a rerun only when it was made
with the same data settings (a nominal-scene run's shards must not feed a --wide run)."""
import json

import pytest

from posevla_core.train.pipeline import PipelineConfig, check_work_dir


def test_fresh_and_matching_work_dirs_pass(tmp_path):
    check_work_dir(tmp_path, PipelineConfig())                  # empty: nothing to check
    (tmp_path / "grounding").mkdir()
    check_work_dir(tmp_path, PipelineConfig())                  # no stamp: data from before it, nominal scenes
    (tmp_path / "pipeline.json").write_text(json.dumps(
        {k: v for k, v in PipelineConfig.wide().__dict__.items() if "steps" not in k and k != "batch_size"}))
    check_work_dir(tmp_path, PipelineConfig.wide())
    # steps are not data: a rerun with other steps reuses the data
    check_work_dir(tmp_path, PipelineConfig(**{**PipelineConfig.wide().__dict__, "grounding_steps": 10}))


@pytest.mark.parametrize("first,then,named", [
    (PipelineConfig(), PipelineConfig.wide(), "randomize"),
    (PipelineConfig.wide(), PipelineConfig(), "grounding_scenes"),
    (PipelineConfig(), PipelineConfig(width=320), "width"),
])
def test_other_data_settings_are_a_clear_error(tmp_path, first, then, named):
    stamp = {k: v for k, v in first.__dict__.items() if "steps" not in k and k != "batch_size"}
    (tmp_path / "pipeline.json").write_text(json.dumps(stamp))
    (tmp_path / "motion").mkdir()
    with pytest.raises(ValueError, match=f"other settings .*{named}.*another --work"):
        check_work_dir(tmp_path, then)


def test_legacy_work_dir_without_stamp_is_nominal(tmp_path):
    (tmp_path / "demos").mkdir()
    with pytest.raises(ValueError, match="randomize"):
        check_work_dir(tmp_path, PipelineConfig.wide())


def test_wide_preset_randomizes_and_quick_follows():
    assert PipelineConfig.wide().randomize and not PipelineConfig().randomize
    assert PipelineConfig.quick(randomize=True).randomize
