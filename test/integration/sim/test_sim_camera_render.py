"""A placed or jittered sim camera renders what its pose and K say; the scene look changes the image only."""
import numpy as np
import pytest
from posevla_core.geometry import se3
from posevla_core.sim.camera import CameraPlacement, Orbit, look_at_optical, matrix_to_pose7


def _segmentation(env):
    r = env._renderer
    r.enable_segmentation_rendering()
    r.update_scene(env.data, camera=env._cam)
    seg = r.render()[..., 0].copy()
    r.disable_segmentation_rendering()
    return seg


@pytest.mark.parametrize("placement", [
    CameraPlacement(orbit=Orbit(azimuth_deg=45, elevation_deg=50), fov_deg=60),
    CameraPlacement(orbit=Orbit(azimuth_deg=-60, distance_m=0.8, roll_deg=10), fov_deg=80, width=640, height=480),
    CameraPlacement(pose=matrix_to_pose7(look_at_optical([0.5, -0.7, 0.6], [0.55, 0.05, 0.0], -10)),
                    width=424, height=240, fov_deg=40)])
def test_placed_camera_renders_where_K_and_the_pose_say(placement):
    """The pose reported is the pose set; K is pinhole_K(fov, W, H); the top-face center of every
    object on the table, projected with (K, pose), is a pixel of that object in the segmentation
    render at the depth the projection gives."""
    import mujoco

    from posevla_core.sim.mujoco import scene
    from posevla_core.sim.mujoco.env import SimEnv, pinhole_K

    with SimEnv(camera=placement) as env:
        for seed in (1000, 1001):
            env.reset(seed)
            np.testing.assert_allclose(env.camera_pose_in_base(), placement.matrix(), atol=1e-6)
            rgb, depth, K = env.render()
            W, H = placement.width or 224, placement.height or 224
            assert rgb.shape == (H, W, 3) and depth.shape == (H, W)
            np.testing.assert_allclose(K, pinhole_K(placement.fov_deg, W, H))
            seg = _segmentation(env)
            T_cam_base = se3.inv_T(env.camera_pose_in_base())
            checked = 0
            for name in env.object_names():
                T = env.object_pose(name)
                top = T[:3, 3] + T[:3, :3] @ [0, 0, scene.OBJECT_HALF]
                pc = se3.transform_points(T_cam_base, top)
                u, v = K[0, 0] * pc[0] / pc[2] + K[0, 2], K[1, 1] * pc[1] / pc[2] + K[1, 2]
                iu, iv = int(round(u)), int(round(v))
                if not (2 <= iu < W - 2 and 2 <= iv < H - 2):
                    continue
                geom = mujoco.mj_name2id(env.model, mujoco.mjtObj.mjOBJ_GEOM, f"{name}_geom")
                if seg[iv, iu] != geom:        # hidden behind the arm or another object
                    continue
                assert abs(depth[iv, iu] - pc[2]) < 0.004 * pc[2], (name, depth[iv, iu], pc[2])
                u2, v2, _ = env.project(top)       # the env's own projection agrees
                assert np.allclose([u2 * W - 0.5, v2 * H - 0.5], [u, v], atol=1e-6)
                checked += 1
            assert checked >= 1


def test_jitter_stays_without_a_placement_and_fov_alone_keeps_it():
    from posevla_core.sim.mujoco.env import SimEnv

    with SimEnv() as a, SimEnv(camera=CameraPlacement(fov_deg=70)) as b:
        a.reset(1000)
        b.reset(1000)
        np.testing.assert_allclose(a.camera_pose_in_base(), b.camera_pose_in_base())   # same jittered pose
        assert not np.allclose(a.camera_pose_in_base(), Orbit().matrix(), atol=1e-3)
        assert a.intrinsics()[0, 0] > b.intrinsics()[0, 0]


def test_scene_look_changes_the_image_only():
    """A SceneLook changes the rendered colors (darker, tinted, another table), not the scene."""
    from posevla_core.sim.mujoco.env import SimEnv
    from posevla_core.sim.mujoco.look import SceneLook

    assert SceneLook.parse("") is None
    look = SceneLook.parse("light=0.4,light_color=1:0.75:0.5,light_azimuth=-90,light_elevation=30,table=0.9:0.9:0.9")
    assert SceneLook.parse(look.format()) == look
    for bad, match in (("light=9", "intensity"), ("table=1:2", "r:g:b"), ("fog=1", "keys"), ("light=x", "number")):
        with pytest.raises(ValueError, match=match):
            SceneLook.parse(bad)
    means = {}
    for name, lk in {"as trained": None, "dim": SceneLook(light=0.4), "warm": SceneLook(light_color=(1.0, 0.6, 0.3)),
                     "white table": SceneLook(table_rgb=(0.95, 0.95, 0.95))}.items():
        with SimEnv(width=96, height=96, look=lk) as env:
            env.reset(1000)
            rgb, depth, _ = env.render()
            means[name] = (rgb.reshape(-1, 3).mean(0), np.nanmean(depth), env.object_pose(env.spec.target))
    base_rgb, base_depth, base_T = means["as trained"]
    for name, (rgb, d, T) in means.items():
        assert np.isclose(d, base_depth) and np.allclose(T, base_T)       # same geometry and scene
    assert means["dim"][0].mean() < 0.8 * base_rgb.mean()
    warm = means["warm"][0]
    assert warm[2] / warm[0] < 0.8 * base_rgb[2] / base_rgb[0]
    assert means["white table"][0].mean() > base_rgb.mean() + 10
