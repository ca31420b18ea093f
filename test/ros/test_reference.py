"""docs/reference.md is current, and its interface tables say what the nodes really advertise.

- the file equals what ``python -m posevla_ros.reference`` writes now (parameter tables, launch
  arguments and interface tables all come from code);
- executor_node and policy_node, built for real, publish / subscribe / serve exactly the
  documented names for their parameters (rclpy's own /rosout, /parameter_events and parameter
  services aside).
"""
from __future__ import annotations

import subprocess
import sys

from rclpy.parameter import Parameter

from posevla_ros import reference

_RCLPY_OWN = ("/rosout", "/parameter_events")


def _documented(node: str, p: dict, present) -> dict[str, set[str]]:
    """{kind: names} of ``INTERFACES[node]`` that exist for parameters ``p`` (``present(i)``)."""
    out: dict[str, set[str]] = {}
    for i in reference.INTERFACES[node]:
        if not present(i):
            continue
        for name in (n.strip() for n in i.name.split(",")):
            name = p[name[6:]] if name.startswith("param:") else name
            if name:
                out.setdefault(i.kind, set()).add(name)
    return out


def _advertised(node) -> dict[str, set[str]]:
    own = (f"/{node.get_name()}/", f"{node.get_name()}/")      # its parameter services
    keep = lambda n: n not in _RCLPY_OWN and not n.startswith(own)  # noqa: E731
    return {k: v for k, v in {
        "publishes": {x.topic_name for x in node.publishers if keep(x.topic_name)},
        "subscribes": {x.topic_name for x in node.subscriptions if keep(x.topic_name)},
        "service": {x.srv_name for x in node.services if keep(x.srv_name)},
        "client": {x.srv_name for x in node.clients if keep(x.srv_name)},
    }.items() if v}


def test_reference_is_current():
    r = subprocess.run([sys.executable, "-m", "posevla_ros.reference", "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_executor_interfaces_are_documented(ros_context):
    from posevla_ros.nodes.executor_node import ExecutorNode

    params = {"robot_description_file": "", "deadman_topic": "/operator/deadman", "camera_pose_topic": "/cam/pose",
              "use_tf": False}
    node = ExecutorNode(context=ros_context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    try:
        p = node.p
        present = lambda i: i.kind != "action client" and "/tf" not in i.name  # noqa: E731 - no tf2, no actions set
        assert _advertised(node) == _documented("executor_node", p, present)
    finally:
        node.destroy_node()


def test_policy_interfaces_are_documented(ros_context, tiny_model):
    from posevla_ros.nodes.policy_node import PolicyNode

    node = PolicyNode(model=tiny_model, context=ros_context)
    try:
        p = dict(node.p, **{"<ns>": "/camera"})
        needs_state = node.core.needs_state
        present = lambda i: needs_state or "proprioception" not in i.when  # noqa: E731
        want = _documented("policy_node", p, present)
        want["subscribes"] = {n.replace("<ns>", p["camera_namespaces"][0]) for n in want["subscribes"]}
        assert _advertised(node) == want
    finally:
        node.destroy_node()
