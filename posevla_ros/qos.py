"""QoS profiles shared by publishers and subscribers of one topic (one home, so both ends match)."""
from __future__ import annotations


def instruction_qos():
    """``/posevla/instruction``: reliable, transient local, depth 1 - the last instruction is
    kept by its publisher, so a policy (or recorder) that starts later still gets it."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
