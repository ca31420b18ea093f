"""The executor's control_msgs action clients (posevla_ros.ros_io.controller_actions) against real
rclpy action servers over DDS: stand-ins for ros2_control's joint_trajectory_controller
(FollowJointTrajectory) and gripper_action_controller (GripperCommand), and the real
executor_node. A plan arrives as a FollowJointTrajectory goal and GripperCommand goals at
the gripper switch; /posevla/stop cancels; a missing, silent, rejecting, aborting or hung
controller holds the arm with one log line and no further motion from that plan; an action
configured without control_msgs stops the node at start.

control_msgs comes from a ROS install, or in the dev venv from the test build that
`make setup` installs (test/interfaces/control_msgs, scripts/build_test_interfaces.sh)."""
import itertools
import math
import subprocess
import sys
import threading
import time
from test.helpers.ros import call_trigger
from test.helpers.executor import (FRAME, PARAMS as TOPIC_PARAMS, Q_HOME, kin,  # noqa: F401 - fixtures
                                   prediction, targets)

import numpy as np
import pytest
from control_msgs.action import FollowJointTrajectory, GripperCommand
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from sensor_msgs.msg import JointState
from std_msgs.msg import Header
from trajectory_msgs.msg import JointTrajectory

from posevla_core.geometry import se3
from posevla_ros.msg import PosePrediction
from posevla_ros.nodes.executor_node import ExecutorNode
from posevla_ros.param_schema import ConfigError
from posevla_ros.ros_io import conversions as conv

ARM_ACTION = "/arm_controller/follow_joint_trajectory"
GRIPPER_ACTION = "/gripper_controller/gripper_cmd"
PARAMS = dict(TOPIC_PARAMS, robot_description_file="posevla://panda", controller_action=ARM_ACTION,
              gripper_action=GRIPPER_ACTION, gripper_max_effort=25.0, action_timeout_s=0.5)
OPEN, CLOSED = PARAMS["gripper_open_position"], PARAMS["gripper_closed_position"]
_RUN = itertools.count()


def action_names() -> dict:
    """Action names of their own for each test: DDS discovery may still list the servers of
    an earlier test of this process for a moment, and an absent server must be absent."""
    ns = f"/t{next(_RUN)}"
    return dict(controller_action=ns + ARM_ACTION, gripper_action=ns + GRIPPER_ACTION)


def seconds(d) -> float:
    return d.sec + 1e-9 * d.nanosec


class StandInControllers:
    """Action servers shaped like ros2_control's, spun by an executor of their own in a
    thread (as a controller runs in its own process). ``arm``: "run" (plays the trajectory in
    wall time, then SUCCESSFUL; a newer goal or a cancel ends it), "hang" (accepts, never ends
    until canceled), "reject", "abort" (accepts, then PATH_TOLERANCE_VIOLATED), "silent" (the
    server exists but its node is never spun: nothing is ever answered), None (no server)."""

    def __init__(self, ctx, names: dict, arm="run", gripper="run"):
        self.closing, self.gripper_mode = False, gripper
        self.node = Node("stand_in_controllers", context=ctx)
        self.silent = Node("silent_controller", context=ctx) if arm == "silent" else None
        self.arm_mode = arm
        self.arm_goals, self.arm_cancels, self.arm_results = [], [], []   # (monotonic time, goal / id)
        self.gripper_goals, self.gripper_cancels = [], []
        self._newest_arm = None
        group = ReentrantCallbackGroup()
        if arm == "silent":
            ActionServer(self.silent, FollowJointTrajectory, names["controller_action"],
                         execute_callback=lambda gh: None)
        elif arm is not None:
            ActionServer(self.node, FollowJointTrajectory, names["controller_action"], execute_callback=self._run_arm,
                         goal_callback=self._arm_goal, cancel_callback=self._arm_cancel, callback_group=group)
        if gripper is not None:
            ActionServer(self.node, GripperCommand, names["gripper_action"], execute_callback=self._run_gripper,
                         goal_callback=self._gripper_goal,
                         cancel_callback=lambda gh: self.gripper_cancels.append(bytes(gh.goal_id.uuid))
                         or CancelResponse.ACCEPT, callback_group=group)
        self.ex = MultiThreadedExecutor(num_threads=4, context=ctx)
        self.ex.add_node(self.node)
        self.thread = threading.Thread(target=self.ex.spin, daemon=True)
        self.thread.start()

    def _arm_goal(self, goal):
        self.arm_goals.append((time.monotonic(), goal))
        return GoalResponse.REJECT if self.arm_mode == "reject" else GoalResponse.ACCEPT

    def _arm_cancel(self, gh):
        self.arm_cancels.append(bytes(gh.goal_id.uuid))
        return CancelResponse.ACCEPT

    def _run_arm(self, gh):
        self._newest_arm = gh
        result = FollowJointTrajectory.Result()
        end = time.monotonic() + seconds(gh.request.trajectory.points[-1].time_from_start)
        if self.arm_mode == "abort":
            gh.abort()
            result.error_code = FollowJointTrajectory.Result.PATH_TOLERANCE_VIOLATED
            result.error_string = "panda_joint4 path error 0.21 rad > tolerance 0.1 rad"
            return result
        while self.arm_mode == "hang" or time.monotonic() < end:
            if gh.is_cancel_requested or self.closing:
                gh.canceled()
                return result
            if self._newest_arm is not gh:        # preempted by a newer goal, as the JTC does
                gh.abort()
                result.error_code, result.error_string = result.INVALID_GOAL, "preempted by a new goal"
                return result
            time.sleep(0.01)
        gh.succeed()
        self.arm_results.append((time.monotonic(), bytes(gh.goal_id.uuid)))
        return result

    def _gripper_goal(self, goal):
        self.gripper_goals.append((time.monotonic(), goal))
        return GoalResponse.ACCEPT

    def _run_gripper(self, gh):
        """"run": reaches the goal; "stall": stops short of a close (an object in the fingers)
        and aborts stalled, as gripper_action_controller does; "fail": aborts, not stalled."""
        time.sleep(0.1)
        target = gh.request.command.position
        if self.gripper_mode == "run" or (self.gripper_mode == "stall" and target > 0.02):
            gh.succeed()
            return GripperCommand.Result(position=target, reached_goal=True)
        gh.abort()
        return GripperCommand.Result(position=0.02, stalled=self.gripper_mode == "stall")

    def gripper_positions(self):
        return [g.command.position for _, g in self.gripper_goals]

    def close(self):
        self.closing = True
        self.ex.shutdown()
        self.thread.join(10)
        self.node.destroy_node()
        if self.silent is not None:
            self.silent.destroy_node()


class Harness:
    """The real executor_node (kinematics passed in, as test_executor_node does) and a node
    that feeds it joint states and predictions and listens on the topics the action path
    replaces; the stand-in controllers spin on their own."""

    def __init__(self, ctx, kin, names: dict, stand_in: StandInControllers | None, **params):
        p = {**PARAMS, **names, **params}
        self.names = names
        self.node = ExecutorNode(kinematics=kin, context=ctx,
                                 parameter_overrides=[Parameter(k, value=v) for k, v in p.items()])
        self.actions = self.node.backend.actions
        self.io = Node("actions_test_io", context=ctx)
        self.pub_pred = self.io.create_publisher(PosePrediction, "/posevla/prediction", QoSProfile(depth=10))
        self.pub_js = self.io.create_publisher(JointState, "/joint_states", QoSProfile(depth=10))
        self.topic_msgs = []
        for topic in (p["controller_topic"], p["gripper_topic"]):
            self.io.create_subscription(JointTrajectory, topic, self.topic_msgs.append, QoSProfile(depth=10))
        self.ex = MultiThreadedExecutor(num_threads=4, context=ctx)
        for n in (self.node, self.io):
            self.ex.add_node(n)
        self.stand_in = None
        if stand_in is not None:
            self.add(stand_in)

    def add(self, stand_in):
        self.stand_in = stand_in

    def ready(self, spin_until, servers=True):
        js = JointState(name=PARAMS["joint_names"], position=list(Q_HOME))

        def up():
            self.pub_js.publish(js)
            return (self.node.joint_positions() is not None and self.pub_pred.get_subscription_count() > 0
                    and (not servers or all(s.ready() for s in (self.actions.arm, self.actions.gripper) if s)))
        return spin_until(self.ex, up, 30)

    def send(self, spin_until, pred):
        """Publish a prediction and spin until the executor's worker has taken it."""
        w = self.node.worker
        before = w.processed + w.dropped
        self.pub_pred.publish(conv.prediction_to_msg(
            pred, Header(frame_id=FRAME, stamp=self.io.get_clock().now().to_msg()), "pick", 1.0))
        assert spin_until(self.ex, lambda: w.processed + w.dropped > before and w.idle(), 60)
        res = self.node.last_result
        assert res.ok, res.reason
        return res.plan

    def call(self, spin_until, name):
        return call_trigger(self.ex, self.io, name)

    def close(self):
        self.ex.shutdown()
        self.node.destroy_node()
        self.io.destroy_node()
        if self.stand_in is not None:
            self.stand_in.close()


@pytest.fixture
def make(ros_context, kin):
    made = []

    def build(arm="run", gripper="run", **params):
        names = action_names()
        h = Harness(ros_context, kin, names, StandInControllers(ros_context, names, arm, gripper), **params)
        made.append(h)
        return h

    yield build
    for h in made:
        h.close()


def is_hold(goal) -> bool:
    pts = goal.trajectory.points
    return len(pts) == 1 and np.allclose(pts[0].positions, Q_HOME)


# ---------------------------------------------------------------- (a) the plan goes through
def test_plan_goes_as_trajectory_goal_and_gripper_commands(make, spin_until, kin, targets):
    """Waypoint 2 closes the gripper. The arm gets one FollowJointTrajectory goal with the
    planned joints and points (dwell included) that succeeds; the gripper gets GripperCommand
    goals: open at the start (nothing was commanded before), closed when the arm has arrived
    at waypoint 2; nothing goes on the JointTrajectory topics."""
    h = make()
    assert h.ready(spin_until)
    assert h.node.backend.transport == (f"FollowJointTrajectory action {h.names['controller_action']}, "
                                        f"GripperCommand action {h.names['gripper_action']}")
    plan = h.send(spin_until, prediction(targets, grippers=(1.0, 1.0, 0.0)))
    s = h.stand_in
    assert spin_until(h.ex, lambda: s.arm_results and len(s.gripper_goals) >= 2 and h.actions.arm.goal is None, 60)
    assert len(s.arm_goals) == 1 and s.arm_cancels == [] and h.actions.last_failure == ""
    traj = s.arm_goals[0][1].trajectory
    assert list(traj.joint_names) == PARAMS["joint_names"]
    times = [seconds(pt.time_from_start) for pt in traj.points]
    assert np.allclose(times, plan.times) and np.allclose([pt.positions for pt in traj.points], plan.positions)
    per_point = [targets[0], targets[1], targets[2], targets[2], targets[2]]    # + the gripper dwell
    assert len(traj.points) == len(per_point)
    for pt, T in zip(traj.points, per_point):
        T_fk = kin.fk(np.array(pt.positions))
        assert np.linalg.norm(T_fk[:3, 3] - T[:3, 3]) <= PARAMS["fk_position_tolerance"]
        assert se3.rotation_angle_between(se3.split_T(T_fk)[1], se3.split_T(T)[1]) <= math.radians(3)
    assert s.gripper_positions() == [OPEN, CLOSED]
    assert all(g.command.max_effort == 25.0 for _, g in s.gripper_goals)
    # the close goes out when the arm reaches waypoint 2 (times[2] after the arm goal), never
    # before (the open went out at t = 0); 0.3 s covers the arm goal's own delivery time
    t_arm, t_close = s.arm_goals[0][0], s.gripper_goals[1][0]
    assert t_close - t_arm >= times[2] - 0.3, (t_close - t_arm, times)
    assert h.topic_msgs == []
    # the same gripper state again: no new gripper goal; the arm gets the next trajectory
    h.send(spin_until, prediction(targets, grippers=(0.0, 0.0, 0.0)))
    assert spin_until(h.ex, lambda: len(s.arm_results) == 2 and h.actions.arm.goal is None, 60)
    assert s.gripper_positions() == [OPEN, CLOSED] and h.actions.last_failure == ""


def test_arm_on_the_topic_gripper_as_action(make, spin_until, targets):
    """controller_action empty, gripper_action set (an arm driven by its trajectory topic, a
    gripper by its own driver's action): the arm trajectory goes on controller_topic exactly as
    without actions, the gripper as GripperCommand goals, nothing on gripper_topic."""
    h = make(controller_action="")
    assert h.ready(spin_until)
    assert h.node.backend.transport == f"JointTrajectory topic, GripperCommand action {h.names['gripper_action']}"
    plan = h.send(spin_until, prediction(targets, grippers=(1.0, 1.0, 0.0)))
    assert spin_until(h.ex, lambda: h.topic_msgs and len(h.stand_in.gripper_goals) >= 2, 60)
    assert len(h.topic_msgs) == 1 and list(h.topic_msgs[0].joint_names) == PARAMS["joint_names"]
    assert np.allclose([seconds(pt.time_from_start) for pt in h.topic_msgs[0].points], plan.times)
    assert h.stand_in.gripper_positions() == [OPEN, CLOSED] and h.stand_in.arm_goals == []


# ---------------------------------------------------------------- (b) stop cancels
def test_stop_cancels_the_running_goal_and_holds(make, spin_until, targets):
    h = make()
    assert h.ready(spin_until)
    h.send(spin_until, prediction(targets, grippers=(1.0, 1.0, 0.0), dt=5.0))    # ~15 s of motion
    s = h.stand_in
    assert spin_until(h.ex, lambda: h.actions.arm.goal is not None and h.actions.arm.goal.handle is not None, 30)
    running = bytes(h.actions.arm.goal.handle.goal_id.uuid)
    assert h.call(spin_until, "/posevla/stop").success
    assert spin_until(h.ex, lambda: s.arm_cancels and len(s.arm_goals) == 2, 30)
    assert s.arm_cancels == [running]
    assert is_hold(s.arm_goals[1][1])                   # the measured position, as a goal
    assert s.gripper_positions() == [OPEN]              # the close at waypoint 2 never goes out
    assert h.actions._switches == [] and h.actions.last_failure == ""
    assert h.topic_msgs == []


# ---------------------------------------------------------------- (c) no controller
def test_absent_controller_sends_nothing_and_the_node_recovers(ros_context, kin, spin_until, targets):
    """No arm action server: the plan is refused with a log line that names it, nothing
    moves, the node keeps running; once the controller is up, the next plan goes through."""
    names = action_names()
    h = Harness(ros_context, kin, names, None)
    try:
        assert h.ready(spin_until, servers=False)
        h.send(spin_until, prediction(targets))
        why = h.actions.last_failure
        assert f"arm controller action server {names['controller_action']} is not available" in why
        assert f"gripper action server {names['gripper_action']} is not available" in why
        assert h.actions.log.counts == {"unavailable": 1} and h.topic_msgs == []
        h.add(StandInControllers(ros_context, names))
        assert h.ready(spin_until)
        h.send(spin_until, prediction(targets))
        assert spin_until(h.ex, lambda: h.stand_in.arm_results, 60)
        assert h.topic_msgs == []
    finally:
        h.close()


def test_silent_controller_times_out_and_holds(make, spin_until, targets):
    """A server that is discovered but never answers: after action_timeout_s the plan is
    dropped (its gripper close never goes out) and one line says why; the hold goal it then
    sends is not answered either, which is logged once, without a retry loop."""
    h = make(arm="silent")
    assert h.ready(spin_until)
    plan = h.send(spin_until, prediction(targets, grippers=(1.0, 1.0, 0.0)))
    assert spin_until(h.ex, lambda: "hold_accept_timeout" in h.actions.log.counts, 30)
    assert "not accepted within action_timeout_s=0.5 s" in h.actions.last_failure
    assert h.actions.log.counts == {"accept_timeout": 1, "hold_accept_timeout": 1}
    end = time.monotonic() + float(plan.times[-1])
    spin_until(h.ex, lambda: time.monotonic() > end, 30)   # past the plan's switch and end
    assert h.stand_in.gripper_positions() == [OPEN]     # the open at t=0 only, never the close
    assert h.actions.log.counts == {"accept_timeout": 1, "hold_accept_timeout": 1}


@pytest.mark.parametrize("mode,says", [("reject", "REJECTED"),
                                       ("abort", "error_code -4 (PATH_TOLERANCE_VIOLATED): panda_joint4 path error")])
def test_rejected_or_failed_goal_is_logged_and_holds(make, spin_until, targets, mode, says):
    h = make(arm=mode)
    assert h.ready(spin_until)
    h.send(spin_until, prediction(targets))
    s = h.stand_in
    assert spin_until(h.ex, lambda: len(s.arm_goals) >= 2 and h.actions.arm.goal is None, 30)
    assert says in h.actions.last_failure
    assert is_hold(s.arm_goals[1][1]) and len(s.arm_goals) == 2
    key = "rejected" if mode == "reject" else "arm_result"
    assert h.actions.log.counts.get(key) == 1


def test_gripper_outcomes(make, spin_until, targets):
    """A close that stalls on an object is a grasp: the plan runs on. A gripper goal that
    aborts without stalling holds the arm: its trajectory goal is canceled, a hold follows."""
    h = make(gripper="stall")
    assert h.ready(spin_until)
    h.send(spin_until, prediction(targets, grippers=(1.0, 1.0, 0.0)))
    s = h.stand_in
    assert spin_until(h.ex, lambda: s.arm_results and h.actions.arm.goal is None and h.actions.gripper.goal is None, 60)
    assert s.gripper_positions() == [OPEN, CLOSED] and s.arm_cancels == [] and h.actions.last_failure == ""
    h = make(gripper="fail")
    assert h.ready(spin_until)
    h.send(spin_until, prediction(targets, grippers=(1.0, 1.0, 0.0)))
    s = h.stand_in
    assert spin_until(h.ex, lambda: s.arm_cancels and len(s.arm_goals) == 2, 30)
    assert "gripper" in h.actions.last_failure and "goal ended ABORTED" in h.actions.last_failure
    assert "stalled=False" in h.actions.last_failure and is_hold(s.arm_goals[1][1])
    assert s.gripper_positions() == [OPEN] and h.actions._switches == []   # the plan's close is dropped


# ---------------------------------------------------------------- (d) no result in time
def test_result_timeout_cancels_and_holds(make, spin_until, targets):
    """The controller accepts and never finishes: action_timeout_s after the trajectory's end
    the goal is canceled and the measured position commanded (that hold hangs too: it is
    canceled in turn and logged, and nothing is sent after it)."""
    h = make(arm="hang")
    assert h.ready(spin_until)
    plan = h.send(spin_until, prediction(targets))
    s = h.stand_in
    assert spin_until(h.ex, lambda: len(s.arm_cancels) >= 2, 60)
    assert "no result for the trajectory goal" in h.actions.last_failure
    assert f"{float(plan.times[-1]) + 0.5:.2f} s after it was sent" in h.actions.last_failure
    assert len(s.arm_goals) == 2 and is_hold(s.arm_goals[1][1])
    assert h.actions.log.counts == {"result_timeout": 1, "hold_result_timeout": 1}


# ---------------------------------------------------------------- (e) no control_msgs
def test_action_without_control_msgs_refuses_to_start(tmp_path):
    """control_msgs made unimportable (as in a venv without it): the node exits 1 with one
    line on stderr, and never falls back to the topic."""
    code = ("import sys; sys.modules['control_msgs'] = None; "
            "from posevla_ros.nodes.executor_node import main; sys.exit(main())")
    out = subprocess.run([sys.executable, "-c", code, "--ros-args", "-p", f"controller_action:={ARM_ACTION}",
                          "-p", "robot_description_file:=posevla://panda"],
                         capture_output=True, text=True, timeout=120)
    lines = [ln for ln in out.stderr.splitlines() if "control_msgs" in ln]
    assert out.returncode == 1, out.stderr
    assert len(lines) == 1 and f"controller_action='{ARM_ACTION}' needs control_msgs" in lines[0], out.stderr
    assert "Traceback" not in out.stderr and "executor_node ready" not in out.stdout + out.stderr


def test_gripper_action_without_gripper_joints_refuses_to_start(ros_context, kin):
    with pytest.raises(ConfigError, match="gripper_joint_names is"):
        ExecutorNode(kinematics=kin, context=ros_context, parameter_overrides=[
            Parameter(k, value=v) for k, v in PARAMS.items() if k != "gripper_joint_names"]
            + [Parameter("gripper_joint_names", Parameter.Type.STRING_ARRAY, [])])
