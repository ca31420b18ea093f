"""The executor tests' setup: executor_node ``PARAMS`` (Panda, no TF, camera extrinsics
``T_BASE_CAM``), the home configuration ``Q_HOME``, the camera ``FRAME``, the module-scoped
``kin`` (Panda kinematics) and ``targets`` (reachable base-frame poses near home) fixtures,
``prediction`` (camera-frame Prediction of base-frame targets), ``check_plan`` (a plan's FK
matches its targets within limits), and ``Harness`` (an ExecutorNode plus a test node that
publishes predictions / joint states and records what the executor sends, over DDS).

Used by test/ros/test_executor_node.py, test/ros/test_executor_chunks.py,
test/ros/test_controller_actions.py and test/ros/test_robot_description.py (the fixtures are
imported by name)."""
import math
from test.helpers.ros import call_trigger
from test.helpers.waiting import poll

import numpy as np
import pytest
from geometry_msgs.msg import PoseArray
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import JointState
from std_msgs.msg import Header
from trajectory_msgs.msg import JointTrajectory

from posevla_core.geometry import se3
from posevla_core.poses import Pose, Prediction, Waypoint
from posevla_ros import params as P
from posevla_ros.logic.planning import load_kinematics
from posevla_ros.msg import PosePrediction
from posevla_ros.nodes.executor_node import ExecutorNode
from posevla_ros.ros_io import conversions as conv

PARAMS = dict(P.defaults(P.EXECUTOR_PARAMS), use_tf=False, robot_description_file="posevla://panda")
# camera 1.2 m in front of the robot, 0.6 m up, looking back at it and slightly down
T_BASE_CAM = se3.make_T([1.2, 0.05, 0.6], Rotation.from_euler("xyz", [-110, 0, 90], degrees=True).as_quat())
PARAMS["camera_to_base.translation"], PARAMS["camera_to_base.rotation_xyzw"] = se3.split_T(T_BASE_CAM)
PARAMS["camera_to_base.translation"] = PARAMS["camera_to_base.translation"].tolist()
PARAMS["camera_to_base.rotation_xyzw"] = PARAMS["camera_to_base.rotation_xyzw"].tolist()
Q_HOME = np.array([0.0, -0.3, 0.0, -2.2, 0.0, 1.9, 0.785])
FRAME = "camera_color_optical_frame"


@pytest.fixture(scope="module")
def kin():
    return load_kinematics(PARAMS)


@pytest.fixture(scope="module")
def targets(kin):
    """Reachable base-frame targets: FK of joint configs near home."""
    steps = [np.zeros(7), np.array([0.1, 0.1, 0, 0.1, 0, -0.05, 0]), np.array([0.2, 0.2, 0, 0.15, 0, -0.1, 0.1])]
    return [kin.fk(Q_HOME + d) for d in steps]


def prediction(targets_base, grippers=(1.0, 1.0, 0.0), dt=0.5) -> Prediction:
    cam_from_base = se3.inv_T(T_BASE_CAM)
    wps = [Waypoint(Pose.from_matrix(cam_from_base @ T), g) for T, g in zip(targets_base, grippers)]
    return Prediction("cube", (0.5, 0.5), Pose([0, 0, 1.0], [0, 0, 0, 1]), wps, waypoint_dt=dt)


def check_plan(kin, plan, targets):
    assert plan.positions.shape == (len(targets), 7)
    assert np.all(np.diff(np.concatenate([[0.0], plan.times])) > 0)
    for q, T in zip(plan.positions, targets):
        T_fk = kin.fk(q)
        assert np.linalg.norm(T_fk[:3, 3] - T[:3, 3]) <= 0.005
        assert se3.rotation_angle_between(se3.split_T(T_fk)[1], se3.split_T(T)[1]) <= math.radians(3)
        assert np.all(q >= kin.lower - 1e-9) and np.all(q <= kin.upper + 1e-9)


class Harness:
    def __init__(self, ctx, kin, **params):
        p = {k: v for k, v in PARAMS.items()}
        p.update(params)
        self.node = ExecutorNode(kinematics=kin, context=ctx,
                                 parameter_overrides=[Parameter(k, value=v) for k, v in p.items()])
        self.io = Node("executor_test_io", context=ctx)
        self.pub_pred = self.io.create_publisher(PosePrediction, "/posevla/prediction", QoSProfile(depth=100))
        self.pub_js = self.io.create_publisher(JointState, "/joint_states", QoSProfile(depth=10))
        self.poses, self.arm, self.gripper = [], [], []
        self.n_sent = 0     # predictions sent through send(): settle() waits until the node has taken each
        self.io.create_subscription(PoseArray, "/posevla/target_poses", self.poses.append, QoSProfile(depth=100))
        self.io.create_subscription(JointTrajectory, PARAMS["controller_topic"], self.arm.append, QoSProfile(depth=100))
        self.io.create_subscription(JointTrajectory, PARAMS["gripper_topic"], self.gripper.append, QoSProfile(depth=100))
        self.ex = MultiThreadedExecutor(num_threads=3, context=ctx)
        self.ex.add_node(self.node)
        self.ex.add_node(self.io)

    def ready(self, spin_until):
        names = PARAMS["joint_names"] + PARAMS["gripper_joint_names"]
        js = JointState(name=list(reversed(names)), position=list(reversed(list(Q_HOME) + [0.04, 0.04])))
        self.pub_js.publish(js)
        return spin_until(self.ex, lambda: self.pub_pred.get_subscription_count() > 0 and
                          self.node.joint_positions() is not None or (self.pub_js.publish(js) and False), 30)

    def send(self, pred: Prediction, stamp=None):
        header = Header(frame_id=FRAME, stamp=stamp or self.io.get_clock().now().to_msg())
        self.pub_pred.publish(conv.prediction_to_msg(pred, header, "pick", 10.0))
        self.n_sent += 1
        return header.stamp

    def settle(self, spin_until):
        """Spin until every prediction from send() reached the node's worker (processed or
        replaced by a newer one), the worker is idle, and no further message came in for
        0.3 s (a flood published directly is still arriving while the worker idles between
        messages). A fixed spin alone raced DDS delivery on a loaded CI machine."""
        w = self.node.worker
        taken = lambda: w.processed + w.dropped  # noqa: E731

        def quiet() -> bool:
            before = taken()
            spin_until(self.ex, lambda: False, 0.3)
            return taken() == before and taken() >= self.n_sent and w.idle()

        return poll(quiet, 60, 0.0)

    def call(self, spin_until, name):
        return call_trigger(self.ex, self.io, name)

    def close(self):
        self.ex.shutdown()
        self.node.destroy_node()
        self.io.destroy_node()
