"""Topic names and QoS profiles that several nodes must agree on (one home, so a publisher
and a subscriber can never disagree on a profile and silently miss each other).

``/posevla/instruction`` is latched: RELIABLE + TRANSIENT_LOCAL, depth 1, on every
publisher and subscriber. A policy (or recorder) that starts after the operator, the
evaluator or the sim-demo graph published the instruction still gets the last one. A
VOLATILE subscriber still receives from these publishers; a VOLATILE *publisher* would be
incompatible with the TRANSIENT_LOCAL subscribers, so always publish with ``INSTRUCTION_QOS``.
"""
from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

TOPIC_INSTRUCTION = "/posevla/instruction"

INSTRUCTION_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
