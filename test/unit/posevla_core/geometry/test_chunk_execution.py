"""Chunk execution without seams: posevla_core.geometry.chunking (ROS-free; the executor_node
in execution_mode chunk over real topics is test/ros/test_executor_chunks.py). The sent trajectories, replayed as a
joint_trajectory_controller runs them (each replaces the previous one at its stamp), never
exceed the configured joint velocity and acceleration limits (finite differences), and every
trajectory starts at the commanded state (position and velocity) of the one before."""
import numpy as np
import pytest

from posevla_core.geometry.chunking import ChunkConfig, ChunkStitcher, seam_profile
from posevla_core.poses import Pose, Prediction, Waypoint
from posevla_ros.ros_io import conversions as conv

VMAX, AMAX = np.full(7, 0.65), np.full(7, 2.0)
TOL = 1e-6


def random_chunks(stitcher, n=25, seed=0, dof=7):
    rng = np.random.default_rng(seed)
    t, target, sent, q = 0.0, np.zeros(dof), [], np.zeros(dof)
    for _ in range(n):
        target = target + rng.normal(0, 0.05, dof)
        stamp = t - rng.uniform(0.05, 0.3)               # the image is older than now (inference latency)
        times = stamp + 0.1 * np.arange(1, 17)
        chunk = target[None] + np.linspace(0, 1, 16)[:, None] * rng.normal(0, 0.3, dof)   # jumpy chunks
        before = stitcher.commanded(t)
        p = stitcher.update(t, times, chunk, (rng.random(16) > 0.5).astype(float), q)
        assert p is not None
        if before is not None:      # starts at the commanded state, position AND velocity
            assert np.allclose(p.positions[0], before[0], atol=1e-12) and np.allclose(p.velocities[0], before[1])
        sent.append((t, p.times, p.positions, p.velocities))
        t += rng.uniform(0.05, 0.5)
    return sent


def test_stitched_chunks_stay_inside_velocity_and_acceleration_limits():
    sent = random_chunks(ChunkStitcher(VMAX, AMAX))
    prof = seam_profile(sent, dt=0.005)
    assert prof["max_velocity"] <= VMAX[0] + TOL and prof["max_acceleration"] <= AMAX[0] + TOL, prof
    assert np.all(np.abs(np.diff(prof["q"], axis=0)) <= VMAX[0] * 0.005 + TOL)      # no position jump anywhere


def test_the_trajectory_ends_at_rest_on_the_chunk_and_late_chunks_send_nothing():
    s = ChunkStitcher(VMAX, AMAX, ChunkConfig())
    goal = np.full(7, 0.3)
    p = s.update(10.0, 10.0 + 0.1 * np.arange(1, 17), np.linspace(0, 1, 16)[:, None] * goal, np.ones(16), np.zeros(7))
    assert np.allclose(p.positions[-1], goal, atol=2e-3) and np.all(p.velocities[-1] == 0)
    assert s.update(20.0, 10.0 + 0.1 * np.arange(1, 17), np.zeros((16, 7)), np.ones(16), np.zeros(7)) is None
    s.update(5.0, 5.0 + 0.1 * np.arange(1, 3), np.zeros((2, 7)), np.ones(2), np.ones(7))   # clock went back
    assert np.allclose(s.plan.positions[0], np.ones(7))    # starts from the measured state again


def test_a_chunk_from_before_the_last_gripper_switch_does_not_reverse_it():
    """Inference latency: the chunk predicted from the frame before a close puts the close 0.2 s
    later. Blended in, it would reopen the gripper just closed on the object; it keeps it closed.
    A chunk from an image after the close may open it again (a real decision, e.g. a release)."""
    s = ChunkStitcher(VMAX, AMAX, ChunkConfig())
    due = lambda t0: t0 + 0.1 * np.arange(1, 17)
    q = np.zeros((16, 7))
    closes_at = lambda k: (np.arange(16) >= k).astype(float) * -1 + 1      # open (1) until point k, then closed
    s.update(10.0, due(10.0), q, closes_at(2), np.zeros(7), t_image=10.0)   # close due at 10.3
    assert s.plan.grippers[0] == 1.0 and s.plan.grippers[-1] == 0.0
    stale = s.update(10.4, due(10.1), q, closes_at(5), np.zeros(7), t_image=10.1)   # made before the close
    assert np.all(stale.grippers == 0.0) and s.gripper_switched_at == pytest.approx(10.3, abs=0.06)
    fresh = s.update(10.6, due(10.5), q, np.ones(16), np.zeros(7), t_image=10.5)    # saw the closed gripper
    assert fresh.grippers[-1] == 1.0
    s.reset()
    assert s.gripper_switched_at is None


def test_replace_mode_trajectories_do_jump_at_seams():
    """The baseline the chunk mode fixes: position-only trajectories restart from rest, so a
    seam during motion is an acceleration spike far beyond the limit."""
    sent = random_chunks(ChunkStitcher(VMAX, AMAX), n=6)
    no_vel = [(t, times[1:], q[1:], None) for t, times, q, _ in sent]
    assert seam_profile(no_vel, dt=0.005)["seam_acceleration"] > 5 * AMAX[0]


def test_a_base_frame_chunk_says_so_in_its_header():
    from std_msgs.msg import Header

    pred = Prediction("", (0.5, 0.5), Pose([0, 0, 1.0], [0, 0, 0, 1]), [Waypoint(Pose([0.4, 0, 0.3], [0, 0, 0, 1]), 1.0)],
                      waypoint_dt=0.1, frame_id="base_link")
    msg = conv.prediction_to_msg(pred, Header(frame_id="camera_color_optical_frame"), "pick", 1.0)
    assert msg.header.frame_id == "base_link" and list(msg.token_ids) == []
    pred.frame_id = ""
    assert conv.prediction_to_msg(pred, Header(frame_id="cam"), "pick", 1.0).header.frame_id == "cam"


def test_the_sim_controller_starts_a_stamped_trajectory_at_its_stamp():
    """As joint_trajectory_controller: header.stamp in the past = sample the trajectory from where
    it is now (a stitched chunk that arrives 50 ms late does not restart from its first point)."""
    from posevla_core.sim.controller import TrajectoryFollower

    f = TrajectoryFollower(["a"], [0.0])
    f.set_trajectory(1.05, ["a"], [0.0, 1.0], [[0.0], [1.0]], [[1.0], [1.0]], t_start=1.0)
    assert abs(f.setpoint(1.05)[0] - 0.05) < 1e-12
    g = TrajectoryFollower(["a"], [0.0])
    g.set_trajectory(1.05, ["a"], [0.0, 1.0], [[0.0], [1.0]], [[1.0], [1.0]])      # no stamp: starts on arrival
    assert abs(g.setpoint(1.05)[0]) < 1e-12
