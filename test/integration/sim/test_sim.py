"""SimEnv: scene, camera conventions, grounding labels, controller, tasks, expert."""
import math

import numpy as np
import pytest

from posevla_core.geometry import se3
from posevla_core.sim.mujoco import scene
from posevla_core.sim import tasks
from posevla_core.sim.controller import TrajectoryFollower  # noqa: E402
from posevla_core.sim.mujoco.env import SimEnv  # noqa: E402
from posevla_core.sim.demonstrator import plan_keyframes, run_expert, expert_waypoints  # noqa: E402


@pytest.fixture(scope="module")
def env():
    e = SimEnv(width=160, height=160)
    yield e
    e.close()


def test_episodes_deterministic_and_valid():
    for seed in range(30):
        for task in tasks.TASKS:
            a, b = tasks.sample_episode(seed, task), tasks.sample_episode(seed, task)
            assert a == b and a.task == task
            assert a.target in a.objects and 3 <= len(a.objects) <= 4
            assert a.category in a.instruction
            if task == "put":
                assert a.container in a.bins and tasks.category_of(a.container) in a.instruction
                for (x, y, _) in a.objects.values():   # objects not inside bins
                    assert all(not tasks.in_bin((x, y, 0.02), (bx, by, 0.0)) for bx, by in a.bins.values())
            else:
                assert a.container is None


def test_reset_render_and_camera(env):
    spec = env.reset(4, "pick")
    rgb, depth, K = env.render()
    assert rgb.shape == (160, 160, 3) and rgb.dtype == np.uint8
    assert depth.shape == (160, 160) and depth.dtype == np.float32
    assert np.isclose(K[0, 0], 80 / math.tan(math.radians(scene.CAMERA_FOVY) / 2))
    T = env.camera_pose_in_base()
    assert np.allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-9) and np.isclose(np.linalg.det(T[:3, :3]), 1)
    assert np.linalg.norm(T[:3, 3] - [0.5, 0, 0]) > 0.6          # not at the robot base
    # optical z looks down toward the table, y (image down) points roughly to -z base
    assert T[2, 2] < -0.2 and T[2, 1] < -0.5
    # every object: label center is in the image and the depth there matches the camera-frame z
    for name in spec.objects:
        cat, (u, v), pose = env.grounding_labels(name)
        assert cat == name.replace("_", " ")
        assert 0.05 < u < 0.95 and 0.05 < v < 0.95
        px, py = int(u * 160), int(v * 160)
        z = pose.position[2]
        # the visible surface is in front of the center by up to the object size
        assert z - 0.06 < depth[py, px] < z + 0.005, (name, depth[py, px], z)
        # camera-frame pose re-projects to (u, v) through K
        uu = (K[0, 0] * pose.position[0] / z + K[0, 2] + 0.5) / 160
        assert abs(uu - u) < 1e-6
    # the target's color dominates its pixel
    _, (u, v), _ = env.grounding_labels()
    c = rgb[int(v * 160), int(u * 160)].astype(int)
    want = np.array(scene.COLORS[spec.target.split("_")[0]][:3]) * 255
    assert np.argmax(c) == np.argmax(want) or spec.target.startswith("yellow")


def test_camera_pose_randomized_per_seed(env):
    env.reset(1)
    T1 = env.camera_pose_in_base()
    env.reset(2)
    T2 = env.camera_pose_in_base()
    env.reset(1)
    assert np.allclose(env.camera_pose_in_base(), T1)
    d = np.linalg.norm(T1[:3, 3] - T2[:3, 3])
    assert 1e-3 < d < 0.15
    assert se3.rotation_angle_between(se3.split_T(T1)[1], se3.split_T(T2)[1]) < math.radians(10)


def test_follower_replaces_from_current_setpoint():
    f = TrajectoryFollower(["a", "b"], [0.0, 0.0])
    f.set_trajectory(0.0, ["a"], [1.0], [[1.0]])
    assert np.allclose(f.setpoint(0.0), [0, 0]) and np.allclose(f.setpoint(1.0), [1, 0])
    f.set_trajectory(1.0, ["b", "a"], [1.0, 2.0], [[1.0, 1.0], [2.0, 0.0]])
    q = f.setpoint(1.5)
    assert 0 < q[1] < 1 and np.isclose(q[0], 1.0)
    assert np.allclose(f.setpoint(3.0), [0.0, 2.0]) and not f.active(3.0)
    f.set_trajectory(3.0, ["a"], [0.5], [[0.5]])
    f.set_trajectory(3.25, ["a"], [], [])        # empty: stop at the current setpoint
    assert 0 < f.setpoint(5.0)[0] < 1.0
    with pytest.raises(ValueError):
        f.set_trajectory(0.0, ["zzz"], [1.0], [[0.0]])


def test_arm_tracks_trajectory(env):
    env.reset(0)
    q0 = env.arm_q()
    goal = q0 + np.array([0.3, -0.2, 0.2, 0.3, -0.3, 0.2, 0.4])
    env.send_arm_trajectory(scene.ARM_JOINTS, [1.0, 2.0], [q0 + (goal - q0) / 2, goal])
    env.step(1.0)
    assert np.max(np.abs(env.arm_q() - (q0 + (goal - q0) / 2))) < 0.05
    env.step(1.5)
    assert np.max(np.abs(env.arm_q() - goal)) < 0.01
    names, q, v = env.joint_state()
    assert names[-2:] == scene.FINGER_JOINTS and len(q) == len(v) == 9
    env.send_gripper_trajectory(["panda_finger_joint1"], [0.5], [[0.0]])
    env.step(1.0)
    assert np.all(env.finger_q() < 0.005)


def test_plan_keyframes_shape(env):
    for task in tasks.TASKS:
        env.reset(3, task)
        plan = plan_keyframes(env)
        assert len(plan) == 6 and len(expert_waypoints(env)) == 6
        g = [w[1] for w in plan]
        assert g == ([1, 1, 0, 0, 0, 0] if task == "pick" else [1, 1, 0, 0, 0, 1])
        for T, _ in plan:
            assert np.allclose(T[:3, 2], [0, 0, -1])          # top-down
        p_obj = env.object_pose(env.spec.target)[:3, 3]
        assert np.allclose(plan[1][0][:3, 3], p_obj, atol=0.01)
        assert np.isclose(plan[0][0][2, 3] - plan[1][0][2, 3], 0.10)


@pytest.mark.parametrize("task,seed", [("pick", 11), ("put", 12)])
def test_expert_succeeds(env, task, seed):
    env.reset(seed, task)
    assert not env.success()
    assert run_expert(env)


@pytest.mark.slow
@pytest.mark.parametrize("task", tasks.TASKS)
def test_expert_success_rate(env, task):
    ok = 0
    for seed in range(20):
        env.reset(seed, task)
        ok += run_expert(env)
    assert ok >= 18, f"{task}: {ok}/20"


def test_fingers_turn_off_a_neighbour_on_their_axis():
    """clear_of_neighbors: an object within NEIGHBOR_R on the finger axis turns the grasp 90 deg
    (the open fingers would land on it); one off the axis, or farther, changes nothing; our scene
    (objects >= 9 cm apart) is never affected."""
    from posevla_core.sim.demonstrator import NEIGHBOR_R, clear_of_neighbors

    p = np.zeros(3)
    yaw = -math.pi / 2                                      # fingers close along base y
    assert clear_of_neighbors(yaw, p, [np.array([0.0, 0.06, 0.0])]) == pytest.approx(0.0)
    assert clear_of_neighbors(yaw, p, [np.array([0.06, 0.0, 0.0])]) == yaw           # beside the axis
    assert clear_of_neighbors(yaw, p, [np.array([0.0, 0.09, 0.0])]) == yaw           # far enough
    assert NEIGHBOR_R < 0.09


def test_release_turns_the_grasp_offset_with_the_hand():
    """release_xy: the held object's center lands on the target; a handle's offset turns with the
    hand; among turns a period apart the one that keeps the release point nearest the robot."""
    from posevla_core.sim.demonstrator import release_xy

    center = np.array([0.79, 0.10])
    xy, t = release_xy(center, np.zeros(2), -math.pi / 2, 0.0, None)           # no offset, no turn
    assert np.allclose(xy, center) and t == 0.0
    off = np.array([0.054, 0.0])                                              # handle along +x
    xy, t = release_xy(center, off, -math.pi / 2, 0.2, math.pi / 2)
    assert np.isclose(np.linalg.norm(xy - center), 0.054)                     # the center lands on the target
    assert xy[0] < center[0] and np.isclose(abs(t - 0.2) % (math.pi / 2), 0.0, atol=1e-9)
    # the hand starts at home yaw: turns within 135 deg of it are allowed (0.2 + pi would reach nearer)
    allowed = [a for a in (0.2 + k * math.pi / 2 for k in range(-2, 3)) if abs(a) <= 3 * math.pi / 4]
    assert np.hypot(*xy) == pytest.approx(min(np.hypot(*(center + 0.054 * np.array([math.cos(a), math.sin(a)])))
                                              for a in allowed))
