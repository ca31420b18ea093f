"""The evaluator node over DDS: it runs episodes from the operator's services and writes its report."""
from __future__ import annotations

import json
import pytest


# ------------------------------------------------------------ node over DDS
@pytest.mark.usefixtures("ros_context")
def test_evaluator_node_over_dds(ros_context, tmp_path, spin_until):
    """Real services and topics: a world node serves /sim/reset + /sim/success and the
    pipeline's stop / pause / resume; the evaluator runs 2 episodes without recording."""
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from std_msgs.msg import String
    from std_srvs.srv import Trigger

    from posevla_ros.nodes.evaluator_node import EvaluatorNode
    from posevla_ros.srv import ResetEpisode

    class World(Node):
        def __init__(self):
            super().__init__("fake_world", context=ros_context)
            self.instructions, self.events, self.t_release = [], [], None
            self.create_service(ResetEpisode, "/sim/reset", self.reset)
            self.create_service(Trigger, "/sim/success", self.success)
            for name in ("/posevla/stop", "/posevla/pause", "/posevla/resume"):
                self.create_service(Trigger, name, lambda q, r, name=name: self.event(name, r))
            self.create_subscription(String, "/posevla/instruction", lambda m: self.instructions.append(m.data), 10)
            self.seed = None

        def event(self, name, resp):
            self.events.append(name)
            if name == "/posevla/resume":
                self.t_release = self.get_clock().now().nanoseconds * 1e-9
            resp.success = True
            return resp

        def reset(self, req, resp):
            self.seed = req.seed
            resp.success, resp.instruction = True, f"{req.task} thing {req.seed}"
            return resp

        def success(self, req, resp):
            now = self.get_clock().now().nanoseconds * 1e-9
            resp.success = self.seed == 5 and self.t_release is not None and now - self.t_release > 0.3
            return resp

    world = World()
    params = [Parameter("episodes", value=2), Parameter("seed", value=5), Parameter("timeout_s", value=1.5),
              Parameter("task", value="pick"), Parameter("out", value=str(tmp_path)),
              Parameter("record", value=False), Parameter("settle_s", value=0.0),
              Parameter("success_poll_hz", value=10.0)]
    ev = EvaluatorNode(context=ros_context, parameter_overrides=params, fk=None)
    ex = MultiThreadedExecutor(num_threads=4, context=ros_context)
    ex.add_node(world)
    ex.add_node(ev)
    try:
        assert spin_until(ex, ev.done.is_set, timeout=60.0)
    finally:
        ev.destroy_node()
        world.destroy_node()
        ex.shutdown()
    s = ev.summary
    assert s is not None and (s["episodes"], s["successes"]) == (2, 1)
    assert s["per_episode"][0]["success"] and s["per_episode"][1]["timeout"]
    assert s["per_episode"][0]["instruction"] == "pick thing 5"
    assert "pick thing 5" in world.instructions and "pick thing 6" in world.instructions
    assert world.events.count("/posevla/resume") == 2 and "/posevla/stop" in world.events
    assert json.loads((tmp_path / "summary.json").read_text())["successes"] == 1
    assert (tmp_path / "report.html").is_file()
