"""The MJCF scene: the Panda URDF (sim/assets.py) loaded through MjSpec, plus a table
(top at z = 0, the robot base panda_link0 = base_link at the world origin), colored
objects (cubes, cylinders), open bins (mocap bodies, moved at reset), lights, an RGB-D
camera (pose set per episode) and position actuators (arm: 7, fingers: 2).

Object bodies are all in the model; an episode places the ones it uses on the table and
parks the rest out of view (see tasks.py).
"""
from __future__ import annotations

import warnings

import numpy as np

from posevla_core.sim.gl import import_mujoco
from posevla_core.sim.mujoco.assets import panda_mujoco_urdf_path

ARM_JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
FINGER_JOINTS = ["panda_finger_joint1", "panda_finger_joint2"]
HOME_Q = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])
FINGER_OPEN = 0.04
FINGER_CLOSED = 0.0

COLORS = {
    "red": (0.85, 0.12, 0.1, 1.0),
    "green": (0.1, 0.7, 0.2, 1.0),
    "blue": (0.1, 0.25, 0.9, 1.0),
    "yellow": (0.95, 0.85, 0.1, 1.0),
}
SHAPES = ("cube", "cylinder")
OBJECT_HALF = 0.0225          # 4.5 cm cube / cylinder diameter and height
# objects scaled (SimEnv(object_scale=...)): up to 1.4x, a 6.3 cm cube, still fits the open
# fingers (pads 8.4 cm apart) with 1 cm to spare a side, and two cubes 9 cm apart
# (tasks.OBJECT_CLEARANCE) cannot touch (half-diagonal 4.45 cm)
OBJECT_SCALE_RANGE = (0.5, 1.4)
BIN_COLORS = {
    "white": (0.92, 0.92, 0.9, 1.0),
    "black": (0.12, 0.12, 0.12, 1.0),
    "purple": (0.55, 0.2, 0.7, 1.0),
}
BIN_INNER_HALF = 0.07         # 14 x 14 cm inside
BIN_WALL = 0.008
BIN_HEIGHT = 0.05
TABLE_HALF = (0.65, 0.75, 0.02)   # x, y, thickness/2
TABLE_CENTER_XY = (0.35, 0.0)
CAMERA_NAME = "rgbd"
CAMERA_FOVY = 50.0            # degrees
WRIST_CAMERA_NAME = "wrist_rgbd"
# hand-eye calibration scenes (posevla_core.calibration.hand_eye): where the ChArUco plate sits
BOARD_ON_HAND = ([0.0, 0.0, 0.13], [1.0, 0.0, 0.0, 0.0])    # in panda_hand: past the fingertips, facing along them
BOARD_ON_TABLE = ([0.5, 0.05, 0.002], [1.0, 0.0, 0.0, 0.0])  # in the world: flat on the table, facing up
# wrist camera in panda_hand (MuJoCo camera: looks along its -z): beside the fingers, looking along them
WRIST_CAMERA = ([0.07, 0.0, 0.03], [0.0, 1.0, 0.0, 0.0])

# arm PD (position actuators) and fingers
ARM_KP = np.array([4500, 4500, 3500, 3500, 2000, 2000, 2000], dtype=float)
ARM_KV = np.array([450, 450, 350, 350, 200, 200, 200], dtype=float)
ARM_FORCE = np.array([87, 87, 87, 87, 12, 12, 12], dtype=float) * 3.0
FINGER_KP = 1500.0
FINGER_FORCE = 40.0


def object_names() -> list[str]:
    return [f"{c}_{s}" for c in COLORS for s in SHAPES]


def bin_names() -> list[str]:
    return [f"{c}_bin" for c in BIN_COLORS]


def check_object_scale(scale) -> float:
    """An object size factor in OBJECT_SCALE_RANGE (1 = as trained); ValueError in one line."""
    lo, hi = OBJECT_SCALE_RANGE
    try:
        s = float(scale)
    except (TypeError, ValueError):
        s = float("nan")
    if not lo <= s <= hi:
        raise ValueError(f"object scale {scale!r}: a factor in [{lo:g}, {hi:g}] of the {200 * OBJECT_HALF:g} cm "
                         f"objects (1 = as trained; larger ones would not fit the open gripper and their 9 cm spacing)")
    return s


def object_extent(name: str, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(size, center offset) of an object's 3D box in its own frame, meters: what the grounding
    labels call its size, and where its box center sits relative to its body frame (a bin's
    frame is at its floor; a cube's and a cylinder's at their center). ``scale``: the objects'
    size factor (bins keep theirs)."""
    if name.endswith("_bin"):
        w = 2 * (BIN_INNER_HALF + BIN_WALL)
        return np.array([w, w, BIN_HEIGHT]), np.array([0.0, 0.0, BIN_HEIGHT / 2])
    return np.full(3, 2 * OBJECT_HALF * scale), np.zeros(3)


def symmetry_of(name: str) -> str:
    """The object's rotational symmetry (posevla_core.geometry.symmetry kinds)."""
    if name.endswith("_bin"):
        return "square"
    return "cube" if name.endswith("_cube") else "cylinder"


def _mj():
    return import_mujoco()


def build_spec(calibration_board: tuple | None = None, object_scale: float = 1.0):
    """MjSpec of the whole scene (not compiled). ``calibration_board`` = (png path,
    (half width, half height) in m, "hand" | "table") adds a textured ChArUco plate on the
    Panda's hand (eye-to-hand) or on the table (eye-in-hand). Every scene has the fixed camera
    ``CAMERA_NAME`` and the wrist camera ``WRIST_CAMERA_NAME``. ``object_scale``: the cubes' and
    cylinders' size factor (check_object_scale; their density stays, so their mass grows with it)."""
    mujoco = _mj()

    spec = mujoco.MjSpec.from_file(str(panda_mujoco_urdf_path()))
    spec.modelname = "posevla_panda_scene"
    opt = spec.option
    opt.timestep = 0.002
    opt.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    opt.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    opt.impratio = 10.0
    spec.visual.global_.offwidth = 640
    spec.visual.global_.offheight = 480
    spec.visual.map.znear = 0.01
    spec.visual.quality.shadowsize = 1024
    spec.stat.extent = 2.0

    # robot: collision geoms hidden (group 3), visual ones colored; gravity compensation
    for g in spec.geoms:
        if g.contype == 0 and g.conaffinity == 0:
            g.group = 1
            g.rgba = [0.93, 0.93, 0.93, 1.0]
        else:
            g.group = 3
            g.friction = [1.0, 0.01, 0.001]
    for b in spec.bodies:
        if b.name.startswith("panda_"):
            b.gravcomp = 1.0
    for name in ("panda_leftfinger", "panda_rightfinger"):
        body = spec.body(name)
        for g in body.geoms:
            if g.group == 1:
                g.rgba = [0.25, 0.25, 0.25, 1.0]
        # explicit finger pads: a box on the inner face of each fingertip, high friction
        sgn = 1.0 if name == "panda_leftfinger" else -1.0
        body.add_geom(name=f"{name}_pad", type=mujoco.mjtGeom.mjGEOM_BOX,
                      size=[0.008, 0.0035, 0.011], pos=[0.0, sgn * 0.0055, 0.0445],
                      friction=[1.5, 0.02, 0.002], condim=4, rgba=[0.2, 0.2, 0.2, 1.0], group=1,
                      solref=[0.01, 1.0], solimp=[0.95, 0.99, 0.001, 0.5, 2.0], mass=0.0)
        body.mass = 0.1
        body.fullinertia = [1e-4, 1e-4, 1e-4, 0, 0, 0]
        body.explicitinertial = True
    hand = spec.body("panda_hand")
    hand.mass = 0.73
    hand.fullinertia = [1e-3, 2.5e-3, 1.7e-3, 0, 0, 0]
    hand.explicitinertial = True
    for j in spec.joints:
        if j.name in ARM_JOINTS:
            j.armature = 0.1
            j.damping = [1.0, 0.0, 0.0]
        elif j.name in FINGER_JOINTS:
            j.armature = 0.01
            j.damping = [5.0, 0.0, 0.0]
    # grasp target as a site too (for rendering/debug)
    spec.body("panda_grasptarget").add_site(name="grasptarget", size=[0.005, 0, 0], rgba=[1, 0, 0, 0], group=5)

    wb = spec.worldbody
    # floor, table
    wb.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[3, 3, 0.1],
                pos=[0, 0, -0.75], rgba=[0.45, 0.45, 0.48, 1])
    tx, ty = TABLE_CENTER_XY
    wb.add_geom(name="table", type=mujoco.mjtGeom.mjGEOM_BOX, size=list(TABLE_HALF),
                pos=[tx, ty, -TABLE_HALF[2]], rgba=[0.62, 0.48, 0.34, 1], friction=[0.8, 0.01, 0.001])
    for i, (sx, sy) in enumerate([(1, 1), (1, -1), (-1, 1), (-1, -1)]):
        wb.add_geom(name=f"table_leg{i}", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.03, 0.03, 0.365],
                    pos=[tx + sx * (TABLE_HALF[0] - 0.05), ty + sy * (TABLE_HALF[1] - 0.05), -0.04 - 0.365],
                    rgba=[0.35, 0.27, 0.2, 1])
    # lights
    wb.add_light(name="key", pos=[0.6, 0.4, 1.6], dir=[-0.1, -0.2, -1], diffuse=[0.7, 0.7, 0.7],
                 specular=[0.1, 0.1, 0.1], castshadow=True)
    wb.add_light(name="fill", pos=[1.4, -0.6, 1.0], dir=[-0.6, 0.4, -0.6], diffuse=[0.35, 0.35, 0.35],
                 specular=[0, 0, 0], castshadow=False)
    spec.visual.headlight.ambient = [0.25, 0.25, 0.25]
    spec.visual.headlight.diffuse = [0.2, 0.2, 0.2]

    # objects (parked at build; tasks place them)
    for k, name in enumerate(object_names()):
        color, shape = name.split("_")
        b = wb.add_body(name=name, pos=[-1.5, -1.0 + 0.15 * k, -0.7])
        b.add_freejoint(name=f"{name}_free")
        common = dict(name=f"{name}_geom", rgba=list(COLORS[color]), friction=[1.2, 0.01, 0.001],
                      condim=4, density=600.0, solref=[0.01, 1.0])
        half = OBJECT_HALF * object_scale
        if shape == "cube":
            b.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, size=[half] * 3, **common)
        else:
            b.add_geom(type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[half, half, 0], **common)
    # bins: mocap bodies (static, moved at reset)
    for k, name in enumerate(bin_names()):
        rgba = list(BIN_COLORS[name.split("_")[0]])
        b = wb.add_body(name=name, pos=[-1.5, 1.0 + 0.3 * k, -0.74], mocap=True)
        h, w, H = BIN_INNER_HALF, BIN_WALL, BIN_HEIGHT
        b.add_geom(name=f"{name}_floor", type=mujoco.mjtGeom.mjGEOM_BOX, size=[h + w, h + w, w / 2],
                   pos=[0, 0, w / 2], rgba=rgba)
        for i, (px, py, sx, sy) in enumerate([(h + w / 2, 0, w / 2, h + w), (-h - w / 2, 0, w / 2, h + w),
                                              (0, h + w / 2, h, w / 2), (0, -h - w / 2, h, w / 2)]):
            b.add_geom(name=f"{name}_wall{i}", type=mujoco.mjtGeom.mjGEOM_BOX, size=[sx, sy, H / 2],
                       pos=[px, py, H / 2], rgba=rgba)
    # camera (pose overwritten per episode through model.cam_pos / cam_quat)
    wb.add_camera(name=CAMERA_NAME, pos=[1.2, 0.45, 0.55], fovy=CAMERA_FOVY)
    # wrist camera (eye-in-hand calibration; the second camera of two-camera episodes)
    cpos, cquat = WRIST_CAMERA
    spec.body("panda_hand").add_camera(name=WRIST_CAMERA_NAME, pos=cpos, quat=cquat, fovy=CAMERA_FOVY)

    # actuators
    for i, j in enumerate(ARM_JOINTS):
        a = spec.add_actuator(name=f"act_{j}", target=j, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        a.set_to_position(kp=float(ARM_KP[i]), kv=float(ARM_KV[i]))
        a.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        a.forcerange = [-ARM_FORCE[i], ARM_FORCE[i]]
        a.ctrlrange = [-10, 10]
        a.ctrllimited = mujoco.mjtLimited.mjLIMITED_FALSE
    for j in FINGER_JOINTS:
        a = spec.add_actuator(name=f"act_{j}", target=j, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        a.set_to_position(kp=FINGER_KP, kv=30.0)
        a.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        a.forcerange = [-FINGER_FORCE, FINGER_FORCE]
        a.ctrllimited = mujoco.mjtLimited.mjLIMITED_FALSE
    if calibration_board is not None:
        _add_calibration_board(spec, *calibration_board)
    return spec


def _add_calibration_board(spec, png: str, half_size, mount: str) -> None:
    """A thin visual-only plate whose +z face shows ``png`` (MuJoCo maps a 2D texture
    once over each box face), mounted per BOARD_ON_HAND / BOARD_ON_TABLE."""
    mujoco = _mj()
    if mount not in ("hand", "table"):
        raise ValueError(f"calibration board mount must be 'hand' or 'table', got {mount!r}")
    spec.add_texture(name="charuco", type=mujoco.mjtTexture.mjTEXTURE_2D, file=str(png))
    mat = spec.add_material(name="charuco", specular=0.0, shininess=0.0, reflectance=0.0)
    mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "charuco"
    mat.texrepeat = [1, 1]
    mat.texuniform = False
    body = spec.body("panda_hand") if mount == "hand" else spec.worldbody
    pos, quat = BOARD_ON_HAND if mount == "hand" else BOARD_ON_TABLE
    body.add_geom(name="charuco_board", type=mujoco.mjtGeom.mjGEOM_BOX, size=[half_size[0], half_size[1], 0.0015],
                  pos=pos, quat=quat, material="charuco", contype=0, conaffinity=0, group=1, density=0.0)


_CACHE: dict = {}


def build_model(calibration_board: tuple | None = None, offscreen: tuple[int, int] = (640, 480),
                object_scale: float = 1.0):
    """Compiled MjModel of the scene (a fresh copy each call; the XML compile is cached).
    ``calibration_board``, ``object_scale``: see build_spec; ``offscreen``: the largest (width,
    height) rendered."""
    mujoco = _mj()
    object_scale = check_object_scale(object_scale)
    key = ("xml", calibration_board, tuple(offscreen)) + ((object_scale,) if object_scale != 1.0 else ())
    if key not in _CACHE:
        spec = build_spec(calibration_board, object_scale)
        spec.visual.global_.offwidth, spec.visual.global_.offheight = (max(640, int(offscreen[0])),
                                                                      max(480, int(offscreen[1])))
        with warnings.catch_warnings():  # the wheel's link5/6 OBJ lack some texture coords
            warnings.filterwarnings("ignore", message=".*texture coordinate.*")
            model = spec.compile()
        _CACHE[key] = spec.to_xml()
        return model
    return mujoco.MjModel.from_xml_string(_CACHE[key])


def look_at_quat(pos, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """MuJoCo camera quaternion (w, x, y, z): camera looks along -z, y up."""
    # scipy: loaded on use, so the launch graphs and the CLI that import this module do not pay for it
    from scipy.spatial.transform import Rotation

    pos, target = np.asarray(pos, float), np.asarray(target, float)
    z = pos - target
    z /= np.linalg.norm(z)
    x = np.cross(np.asarray(up, float), z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z], axis=1)

    qx, qy, qz, qw = Rotation.from_matrix(R).as_quat()
    return np.array([qw, qx, qy, qz])
