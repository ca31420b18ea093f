"""The robot model the ROS way: with no ``robot_description_file`` the executor takes the URDF
from ``/robot_description`` (std_msgs/String, reliable + transient local, as
robot_state_publisher publishes it), over real DDS.

- before any description: predictions are refused (``no_robot_model``), nothing moves;
- a description that lacks a configured joint is not used (one error line), still no motion;
- the robot's real URDF (published late, or before the node started: transient local) -> the
  executor plans with it, and every sent point's FK matches its target;
- the kinematics built from the text equal those built from the file (pinocchio both ways).
"""
from __future__ import annotations

from test.helpers.executor import PARAMS, Q_HOME, Harness, check_plan, prediction

import numpy as np
import pytest
from rclpy.node import Node
from std_msgs.msg import String

from posevla_core.geometry.kinematics import RobotKinematics
from posevla_core.sim.mujoco.assets import resolve_robot_description
from posevla_ros.ros_io.robot_description import description_qos

TOPIC = "/robot_description"


@pytest.fixture(scope="module")
def urdf_text() -> str:
    return resolve_robot_description("posevla://panda").read_text()


class Publisher:
    """robot_state_publisher's side: the URDF once, latched."""

    def __init__(self, ctx):
        self.node = Node("robot_description_standin", context=ctx)
        self.pub = self.node.create_publisher(String, TOPIC, description_qos())

    def publish(self, text: str) -> None:
        self.pub.publish(String(data=text))


def _refused_for_no_model(h, spin_until, targets) -> None:
    h.send(prediction(targets))
    assert h.settle(spin_until)
    res = h.node.last_result
    assert res is not None and not res.ok and res.key == "no_robot_model", res
    assert not h.arm


def test_kinematics_from_text_equal_the_file(urdf_text):
    names = PARAMS["joint_names"]
    a = RobotKinematics("posevla://panda", PARAMS["ee_link"], names)
    b = RobotKinematics.from_xml(urdf_text, PARAMS["ee_link"], names)
    rng = np.random.default_rng(0)
    for q in rng.uniform(a.lower, a.upper, (20, len(names))):
        assert np.allclose(a.fk(q), b.fk(q), atol=1e-12)
    assert np.allclose(a.lower, b.lower) and np.allclose(a.velocity_limits, b.velocity_limits)


def test_executor_plans_with_the_published_description(ros_context, spin_until, urdf_text):
    h = Harness(ros_context, None, robot_description_file="")
    stand_in = Publisher(ros_context)
    h.ex.add_node(stand_in.node)
    try:
        assert h.node.robot.source == TOPIC and h.node.robot.kinematics is None
        assert h.ready(spin_until)
        kin_file = RobotKinematics("posevla://panda", PARAMS["ee_link"], PARAMS["joint_names"])
        targets = [kin_file.fk(Q_HOME + d) for d in (np.zeros(7), np.array([0.1, 0.1, 0, 0.1, 0, -0.05, 0]))]
        _refused_for_no_model(h, spin_until, targets)
        assert "waiting for the URDF on /robot_description" in h.node.robot.reason

        stand_in.publish(urdf_text.replace('"panda_joint7"', '"panda_joint_seven"'))
        assert spin_until(h.ex, lambda: "not used" in h.node.robot.reason, 30), h.node.robot.reason
        assert "panda_joint7" in h.node.robot.reason
        _refused_for_no_model(h, spin_until, targets)

        stand_in.publish(urdf_text)
        assert spin_until(h.ex, lambda: h.node.robot.kinematics is not None, 30), h.node.robot.reason
        h.send(prediction(targets, grippers=(1.0, 1.0)))
        assert spin_until(h.ex, lambda: h.arm, 60), h.node.last_result
        traj = h.arm[-1]
        assert list(traj.joint_names) == PARAMS["joint_names"]
        plan = h.node.last_result.plan
        check_plan(h.node.robot.kinematics, plan, targets)
        check_plan(kin_file, plan, targets)
    finally:
        stand_in.node.destroy_node()
        h.close()


def test_description_published_before_the_node_starts(ros_context, spin_until, urdf_text):
    """Transient local: an executor started after robot_state_publisher still gets the URDF."""
    stand_in = Publisher(ros_context)
    stand_in.publish(urdf_text)
    h = Harness(ros_context, None, robot_description_file="")
    h.ex.add_node(stand_in.node)
    try:
        assert spin_until(h.ex, lambda: h.node.robot.kinematics is not None, 30), h.node.robot.reason
        assert h.node.robot.kinematics.dof == 7
    finally:
        stand_in.node.destroy_node()
        h.close()


UR_JOINTS = ["shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint", "wrist_1_joint", "wrist_2_joint",
             "wrist_3_joint"]


@pytest.mark.parametrize("robot", ["franka_fr3", "franka_panda", "ur5e"])
def test_real_arm_configs_load_and_take_the_urdf_from_the_topic(robot):
    """The real-arm configs name their drivers' controllers and read the URDF from the topic."""
    from posevla_ros import params

    p = params.robot_executor_params(robot)
    assert p["robot_description_file"] == "" and p["robot_description_topic"] == TOPIC
    assert p["controller_action"].endswith("/follow_joint_trajectory") and p["gripper_action"]
    assert p["gripper_joint_names"] == [] and p["gripper_topic"] == ""


def test_ur5e_config_plans_on_a_ur_description():
    """ur5e.yaml's joint names and ee_link against a UR-named URDF (robosuite's UR5e export with
    ur_description's joint names, the grasp target as tool0): checked, built from text, planned."""
    from posevla_core.poses import Pose, Waypoint
    from posevla_ros import params
    from posevla_ros.logic.planning import ExecutorCore

    text = (params.config_path("robots/robosuite/ur5e.urdf")).read_text().replace('"ur5e_grasptarget"', '"tool0"')
    for i, name in enumerate(UR_JOINTS, 1):
        text = text.replace(f'"ur5e_joint{i}"', f'"{name}"')
    p = dict(params.defaults(params.EXECUTOR_PARAMS), **params.robot_executor_params("ur5e"))
    params.check_urdf_text(p, text, TOPIC)
    kin = RobotKinematics.from_xml(text, p["ee_link"], p["joint_names"])
    q0 = np.array([0.0, -1.2, 1.5, -1.9, -1.57, 0.0])
    targets = [kin.fk(q0 + d) for d in (np.zeros(6), np.array([0.1, -0.1, 0.1, 0.0, 0.0, 0.1]))]
    p["workspace.min"], p["workspace.max"] = [-2.0, -2.0, -2.0], [2.0, 2.0, 2.0]
    res = ExecutorCore(kin, p).plan_targets([Waypoint(Pose.from_matrix(T), 1.0) for T in targets], 0.5, q0)
    assert res.ok, res.reason
    fk_errors = [np.linalg.norm(kin.fk(q)[:3, 3] - T[:3, 3]) for q, T in zip(res.plan.positions, targets)]
    assert max(fk_errors) <= 0.005
    with pytest.raises(ValueError, match="wrist_3_joint"):
        params.check_urdf_text(p, text.replace('"wrist_3_joint"', '"wrist_3"'), TOPIC)
