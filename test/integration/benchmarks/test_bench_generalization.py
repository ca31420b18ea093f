"""The camera generalization suite (posevla_ros/cli/bench_generalization.py): level selection and flags
(fast), and a real run of two levels on one seed that writes the table, results and plot with
consistent numbers and resumes without re-running (slow)."""
import json

import numpy as np
import pytest

from posevla_ros.cli import bench_generalization as GZ


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


def test_new_axes_stage_their_sensor_objects_size_and_held_out_views():
    """depth_noise / distractors / object_size levels pass their flag (and nothing else) to
    `posevla evaluate`; the viewpoint levels are 9 fixed orbits, every pair of azimuth,
    elevation and distance crossed once, each with a fov that keeps the workspace in view."""
    from posevla_core.sim.camera import CameraPlacement, Orbit

    levels = GZ.default_levels()
    by_key = {lv.key: lv for lv in levels}
    cfg = GZ.SuiteConfig(checkpoint="ck", episodes=2)
    for key, flags in (("depth_noise_realsense", ["--depth-noise", "realsense"]),
                       ("depth_noise_heavy", ["--depth-noise", "heavy"]),
                       ("distractors_5objects", ["--objects", "5"]), ("distractors_8objects", ["--objects", "8"]),
                       ("object_size_x0.7", ["--object-scale", "0.7"]),
                       ("object_size_x1.3", ["--object-scale", "1.3"])):
        assert by_key[key].camera_flags() == flags
        assert GZ.level_command(cfg, by_key[key], "out")[-len(flags):] == flags
    assert by_key["distractors_7objects"].describe() == "nominal camera (jittered as in training); 7 objects"
    assert [lv.key for lv in GZ.select_levels(levels, ["object_size", "depth_noise"], None)] == [
        "nominal", "depth_noise_realsense", "depth_noise_heavy", "object_size_x0.7", "object_size_x1.3"]
    views = [lv for lv in levels if lv.axis == "viewpoint"]
    assert len(views) == 9 and "viewpoint_az+45el25d0.7" in by_key
    orbits = [lv.camera.orbit for lv in views]
    for f, g in (("azimuth_deg", "elevation_deg"), ("azimuth_deg", "distance_m"), ("elevation_deg", "distance_m")):
        assert len({(getattr(o, f), getattr(o, g)) for o in orbits}) == 9          # a Latin square
    assert {o.azimuth_deg for o in orbits} == {-45, 0, 45} and {o.elevation_deg for o in orbits} == {25, 45, 65}
    assert all(not (o.azimuth_deg == 0 and o.distance_m == 1.0 and o.elevation_deg < 40) for o in orbits)  # not nominal
    assert GZ.framing_fov_deg(Orbit()) == 50.0
    for lv in views:
        flags = lv.camera_flags()
        assert flags[0].startswith("--camera-pose=") and flags[1] == "--fov"
        np.testing.assert_allclose(CameraPlacement.parse(flags[0].split("=", 1)[1]).matrix(), lv.camera.orbit.matrix(),
                                   atol=1e-5)
        near, fov = lv.camera.orbit.distance_m < 1.0, float(flags[2])
        assert (fov > 60) if near else (fov < 55)       # a nearer camera needs the wider lens
        # where objects stand (x 0.35-0.62, |y| <= 0.25, up to 6 cm tall) projects into the image
        from posevla_core.sim import tasks

        corners = np.array([[x, y, z, 1.0] for x in tasks.OBJ_X for y in tasks.OBJ_Y for z in (0.0, 0.06)])
        pc = (np.linalg.inv(lv.camera.orbit.matrix()) @ corners.T).T
        assert np.all(np.abs(pc[:, :2] / pc[:, 2:3]) < np.tan(np.radians(fov) / 2)), lv.key


@pytest.mark.slow
def test_suite_runs_two_levels_writes_consistent_results_and_resumes(tmp_path, monkeypatch):
    import os

    from posevla_ros.logic.report import wilson_interval

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
