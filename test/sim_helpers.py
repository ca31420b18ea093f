"""Helpers shared by the sim tests."""
import numpy as np


def geom_mask(env, geoms) -> np.ndarray:
    """(H, W) bool: the pixels of ``env``'s camera that MuJoCo's segmentation render gives to
    ``geoms`` (geom ids), in the env's current state and image size."""
    mj = env._mj
    r = mj.Renderer(env.model, env.height, env.width)
    try:
        r.enable_segmentation_rendering()
        r.update_scene(env.data, camera=env._cam, scene_option=env.scene_option)
        seg = r.render()
    finally:
        r.close()
    return (seg[..., 1] == int(mj.mjtObj.mjOBJ_GEOM)) & np.isin(seg[..., 0], list(geoms))
