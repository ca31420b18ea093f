"""/posevla/instruction is latched (topics.INSTRUCTION_QOS: RELIABLE + TRANSIENT_LOCAL,
depth 1): a policy_node that starts AFTER the instruction was published still gets the
last one, over real DDS."""
from __future__ import annotations

from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import String

from posevla_ros.nodes.policy_node import PolicyNode
from posevla_ros.ros_io.topics import INSTRUCTION_QOS, TOPIC_INSTRUCTION


def test_late_policy_gets_the_last_instruction(ros_context, spin_until, tiny_model):
    operator = Node("operator", context=ros_context)
    pub = operator.create_publisher(String, TOPIC_INSTRUCTION, INSTRUCTION_QOS)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(operator)
    pub.publish(String(data="pick up the blue cube"))
    pub.publish(String(data="pick up the red cube"))     # depth 1: only the last one is kept
    spin_until(ex, lambda: False, 0.2)
    policy = PolicyNode(model=tiny_model, context=ros_context)     # joins after both were sent
    ex.add_node(policy)
    try:
        assert policy._instruction == ""
        assert spin_until(ex, lambda: policy._instruction == "pick up the red cube", 30), policy._instruction
        info = policy.get_subscriptions_info_by_topic(TOPIC_INSTRUCTION)
        assert all(i.qos_profile.durability == INSTRUCTION_QOS.durability for i in info) and info
    finally:
        ex.shutdown()
        policy.destroy_node()
        operator.destroy_node()
