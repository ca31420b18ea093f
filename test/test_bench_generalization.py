"""The camera generalization suite (posevla_ros/generalization.py): level selection and flags
(fast), and a real run of two levels on one seed that writes the table, results and plot with
consistent numbers and resumes without re-running (slow)."""
import json

import numpy as np
import pytest

from posevla_ros import generalization as GZ


def test_levels_cover_the_axes_and_stage_their_camera():
    levels = GZ.default_levels()
    assert [lv.key for lv in levels][0] == "nominal" and len({lv.key for lv in levels}) == len(levels)
    assert {lv.axis for lv in levels} == set(GZ.AXES)
    by_key = {lv.key: lv for lv in levels}
    from posevla_core.sim.camera import CameraPlacement, Orbit

    flags = by_key["azimuth_+45deg"].camera_flags()
    assert len(flags) == 1 and flags[0].startswith("--camera-pose=")
    pose = CameraPlacement.parse(flags[0].split("=", 1)[1]).matrix()
    np.testing.assert_allclose(pose, Orbit(azimuth_deg=45).matrix(), atol=1e-5)
    assert by_key["fov_80deg"].camera_flags() == ["--fov", "80"]
    assert by_key["resolution_424x240"].camera_flags() == ["--width", "424", "--height", "240"]
    assert by_key["nominal"].camera_flags() == []
    picked = GZ.select_levels(levels, ["fov"], None)
    assert [lv.key for lv in picked] == ["nominal", "fov_40deg", "fov_60deg", "fov_80deg"]
    with pytest.raises(ValueError, match="known axes"):
        GZ.select_levels(levels, ["fog"], None)
    assert by_key["lighting_dimx0.4"].camera_flags() == ["--look=light=0.4"]
    assert by_key["table_white"].camera_flags() == ["--look=table=0.92:0.92:0.9"]
    with pytest.raises(ValueError, match="known levels"):
        GZ.select_levels(levels, None, ["fov_45deg"])


@pytest.mark.slow
def test_suite_runs_two_levels_writes_consistent_results_and_resumes(tmp_path, monkeypatch):
    import os

    from posevla_ros.report import wilson_interval

    monkeypatch.setenv("POSEVLA_BENCH_DOMAIN", os.environ["ROS_DOMAIN_ID"])   # this pytest process's own domain

    work, out = tmp_path / "work", tmp_path / "out"
    argv = ["--levels", "nominal,distance_0.8m", "--episodes", "1", "--seed", "1000", "--timeout", "15",
            "--work", str(work), "--out", str(out)]
    assert GZ.main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    table = (out / "table.md").read_text()
    assert (out / "success.png").stat().st_size > 5000
    assert table.startswith(f"Made by: `{results['command']}`") and "--levels nominal,distance_0.8m" in results["command"]
    rows = results["rows"]
    assert [r["key"] for r in rows] == ["nominal", "distance_0.8m"]
    for r in rows:
        s = json.loads((work / r["key"] / "summary.json").read_text())      # the level's own evaluation
        assert r["episodes"] == s["episodes"] == 1 and r["successes"] == s["successes"] <= 1
        assert s["per_episode"][0]["seed"] == 1000
        assert r["ci95"] == pytest.approx(list(wilson_interval(r["successes"], r["episodes"])))
        assert f"| {r['axis']} | {r['level']} |" in table and f"{r['successes']}/{r['episodes']}" in table
    assert "--camera-pose=" in rows[1]["command"] and "--camera-pose" not in rows[0]["command"]
    # resumable: a second run reuses both levels (their summaries are not rewritten)
    mtimes = [(work / r["key"] / "summary.json").stat().st_mtime_ns for r in rows]
    assert GZ.main(argv) == 0
    assert [(work / r["key"] / "summary.json").stat().st_mtime_ns for r in rows] == mtimes
    # another command for a level (more episodes) runs it again instead of reporting the old one
    stamp = (work / "nominal" / "command.txt").read_text()
    assert "--episodes 1" in stamp
