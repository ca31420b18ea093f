"""Teleop over DDS: the episode keys reach the evaluator's services."""
from __future__ import annotations

from test.helpers.teleop import panda  # noqa: F401 - fixtures

from posevla_ros.logic import teleop


def test_teleop_episode_keys_call_the_evaluator(ros_context, panda, spin_until):
    """Collect graphs: teleop's episode keys go to the evaluator's operator services over DDS
    (n/Enter ready, e or y success, x or b failure, q abort)."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from std_srvs.srv import Trigger

    from posevla_ros.nodes.teleop_node import TeleopNode

    kin, _ = panda
    calls: list[str] = []
    evaluator = Node("stand_in_evaluator", context=ros_context)
    for what in ("ready", "success", "failure", "abort"):
        evaluator.create_service(Trigger, f"/evaluator/{what}",
                                 lambda _q, r, w=what: (calls.append(w), setattr(r, "success", True), r)[-1])
    tele = TeleopNode(kinematics=kin, context=ros_context, parameter_overrides=[
        Parameter("mode", value="none"), Parameter("episode_services", value="evaluator")])
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(evaluator)
    ex.add_node(tele)
    keys = teleop.KeyboardMapper()
    try:
        assert spin_until(ex, lambda: all(c.service_is_ready() for c in tele._episode_clients.values()), 20.0)
        for k in "neyxbq":
            tele.handle_command(keys.map(k))
        assert spin_until(ex, lambda: len(calls) == 6, 20.0), calls
        assert sorted(calls) == sorted(["ready", "success", "success", "failure", "failure", "abort"])
        assert tele.quit_requested
    finally:
        tele.destroy_node()
        evaluator.destroy_node()
        ex.shutdown()
