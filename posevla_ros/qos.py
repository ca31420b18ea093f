"""QoS profiles shared by publishers and subscribers of one topic (one home, so both ends match)."""
from __future__ import annotations


def instruction_qos():
    """``/posevla/instruction``: reliable, transient local, depth 1 - the last instruction is
    kept by its publisher, so a policy (or recorder) that starts later still gets it."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def subscribe_instruction(node, callback, callback_group=None) -> list:
    """Subscribe ``callback`` to ``/posevla/instruction`` twice: transient local (a late
    subscriber gets the last instruction of a transient-local publisher: sim_node, the
    evaluator) and volatile (DDS refuses to match a transient-local subscription with a
    volatile publisher, e.g. a plain `ros2 topic pub`, which would then be ignored without
    a word). A transient-local publisher's live messages thus arrive twice: fine for an
    idempotent "latest instruction" callback, which is all this is for. The transient-local
    subscription's "incompatible QoS" warning for volatile publishers is silenced: the
    volatile one receives them."""
    from rclpy.event_handler import SubscriptionEventCallbacks
    from rclpy.qos import QoSProfile
    from std_msgs.msg import String

    quiet = SubscriptionEventCallbacks(incompatible_qos=lambda _event: None)
    return [node.create_subscription(String, "/posevla/instruction", callback, instruction_qos(),
                                     callback_group=callback_group, event_callbacks=quiet),
            node.create_subscription(String, "/posevla/instruction", callback, QoSProfile(depth=10),
                                     callback_group=callback_group)]
