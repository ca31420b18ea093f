"""The sim demo graph (launch/sim_demo.launch.py, `posevla run sim-demo`) as users start it.

- Closed loop with default arguments, in this process, through the same path as
  `posevla run sim-demo -p exit_on_success=true` (runner.graph_specs + run_specs until
  runner.graph_finished): sim_node reports the episode's success, holds the robot and pauses
  the policy (hold_on_success), and ends the run.
- Heavy imports happen before any node thread starts (runner.preload): once, sim_node's physics
  thread ran scipy's Rotation while policy_node's constructor was still importing torch, and
  the step failed on the half-imported module.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

SIM_TIME_LIMIT_S = 120.0     # generous: the demo seeds succeed in ~10-25 s of sim time here


@pytest.mark.slow
def test_sim_demo_default_arguments_succeed_and_end():
    from posevla_ros.launching import runner

    specs = runner.graph_specs("sim_demo", {}, overrides={"exit_on_success": True})
    sim_spec = {s.name: s for s in specs}["sim_node"].parameters()
    assert sim_spec["hold_on_success"] is True and sim_spec["seed"] == 1000 and sim_spec["task"] == "pick"
    limit_hit = []

    def until(nodes: dict) -> bool:
        sim, executor, policy = nodes["sim_node"], nodes["executor_node"], nodes["policy_node"]
        with sim.lock:
            t = sim.env.time
        if t > SIM_TIME_LIMIT_S:
            limit_hit.append(t)
            return True
        # the run ends where `posevla run` ends it, once the hold reached both nodes
        held = executor.core.gate.stopped and policy.outcomes().get("paused", 0) > 0
        return runner.graph_finished(nodes) and held

    nodes = runner.run_specs(specs, until=until)
    sim, policy = nodes["sim_node"], nodes["policy_node"]
    assert not limit_hit, f"no success within {SIM_TIME_LIMIT_S} s sim time; policy outcomes {policy.outcomes()}"
    assert sim.succeeded.is_set() and sim.finished.is_set()
    assert 0.0 < sim.success_after_s < SIM_TIME_LIMIT_S
    assert policy.outcomes().get("published", 0) > 0          # it acted on predictions, then paused
    assert nodes["executor_node"].sent > 0                     # and the arm was commanded
    assert sim.step_errors == 0                                # no "sim step failed"


_PROBE = r"""
import json, sys, threading

HEAVY = ("torch", "transformers", "mujoco", "scipy.spatial.transform")


def ready(name):
    mod = sys.modules.get(name)
    return mod is not None and not getattr(getattr(mod, "__spec__", None), "_initializing", False)


starts, recording = [], []
_start = threading.Thread.start


def start(self):
    if recording:
        starts.append({"thread": self.name, "ready": {m: ready(m) for m in HEAVY}})
    return _start(self)


threading.Thread.start = start
from posevla_ros.launching import graphs as G, runner

assert not any(ready(m) for m in ("torch", "mujoco")), "imported before the build: the probe shows nothing"
context = runner.init_context()
recording.append(True)
nodes = runner.build_graph(G.build("sim_demo", {}), context)
recording.clear()
sim_errors = nodes[0].step_errors
runner.close_graph(nodes, context)
print(json.dumps({"starts": starts, "sim_step_errors": sim_errors}))
"""


def test_heavy_modules_are_imported_before_the_first_node_thread():
    """Building the sim_demo graph in a fresh interpreter: every thread the nodes start finds
    torch, transformers, mujoco and scipy's Rotation fully imported (runner.preload ran first)."""
    r = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    names = [s["thread"] for s in out["starts"]]
    assert "sim-physics" in names and "posevla-policy" in names, names
    late = [s for s in out["starts"] if not all(s["ready"].values())]
    assert not late, f"node threads started before the heavy imports finished: {late}"
    assert out["sim_step_errors"] == 0


def test_preload_imports_once_and_skips_what_is_not_installed(monkeypatch):
    from posevla_ros.launching import runner

    monkeypatch.setitem(runner.PRELOAD, "some.node", ("json", "posevla_no_such_module_here", "json"))
    assert runner.preload(["some.node", "not.a.node"]) == ["json"]
