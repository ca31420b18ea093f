"""The teleop tests' robot: the module-scoped ``panda`` fixture, the sim Panda's executor
parameters and their kinematics as ``(kin, params)`` (no ROS needed).

Used by test/unit/posevla_ros/logic/test_teleop.py and test/ros/test_teleop_node.py (both import
the fixture by name)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def panda():
    from posevla_ros import params
    from posevla_ros.logic.planning import load_kinematics

    p = dict(params.defaults(params.EXECUTOR_PARAMS), **params.robot_executor_params("sim_panda"))
    return load_kinematics(p), p
