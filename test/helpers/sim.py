"""Helpers shared by the sim tests."""
from posevla_core.sim.mujoco.env import body_mask, geom_mask  # noqa: F401 - re-exported for the tests
