"""Shared test fixtures.

- A ROS_DOMAIN_ID unique to this pytest process (set at import, before any rclpy
  import, and inherited by node subprocesses), localhost-only discovery: parallel test runs
  on one machine do not see each other. Override with POSEVLA_TEST_DOMAIN_ID.
- ``ros_context``: a fresh rclpy Context per test (init + shutdown).
- ``spin_until(executor, predicate, timeout)``: spin until the predicate holds.
- ``node_process(module, *ros_args)``: run ``python -m <module> --ros-args ...`` in a
  subprocess (same env, same domain), stopped with SIGINT (then SIGKILL) at teardown.
- ``tiny_model``: a random tiny PoseVLA (session scope).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

os.environ["ROS_DOMAIN_ID"] = os.environ.get("POSEVLA_TEST_DOMAIN_ID", str(10 + os.getpid() % 200))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _torch_threads():
    """policy_node sets torch's CPU threads process-wide (its inference_threads parameter): each
    test leaves the count as it found it (torch is not imported here for tests without it)."""
    torch = sys.modules.get("torch")
    n = torch.get_num_threads() if torch is not None else None
    yield
    if n is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)


@pytest.fixture
def ros_context():
    import rclpy

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    yield ctx
    if ctx.ok():
        rclpy.shutdown(context=ctx)


def spin_until(executor, predicate, timeout: float = 30.0, step: float = 0.05) -> bool:
    """Spin ``executor`` until ``predicate()`` is true or ``timeout`` seconds pass."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        executor.spin_once(timeout_sec=step)
    return bool(predicate())


def call_trigger(executor, node, name: str, timeout: float = 30.0):
    """Call the std_srvs/Trigger service ``name`` from ``node``, spinning ``executor`` until the
    service is there and its answer arrives (asserts both); returns the response."""
    from std_srvs.srv import Trigger

    cli = node.create_client(Trigger, name)
    assert spin_until(executor, cli.service_is_ready, timeout), f"service {name} not available"
    fut = cli.call_async(Trigger.Request())
    assert spin_until(executor, fut.done, timeout), f"service {name} did not answer"
    return fut.result()


class NodeProcess:
    def __init__(self, module: str, ros_args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "w")
        cmd = [sys.executable, "-m", module]
        if ros_args:
            cmd += ["--ros-args", *ros_args]
        env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
                   PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def node_process(tmp_path):
    started: list[NodeProcess] = []

    def start(module: str, *ros_args: str) -> NodeProcess:
        p = NodeProcess(module, list(ros_args), tmp_path / f"{module.rsplit('.', 1)[-1]}_{len(started)}.log")
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


@pytest.fixture(scope="session")
def tiny_model():
    import torch

    from posevla_core.config import PoseVLAConfig
    from posevla_core.policies.small.modeling import PoseVLA

    from model_helpers import forbid_no_object

    torch.manual_seed(0)
    # the nodes under test get full answers (tests of the no-object path make the model answer it)
    model = forbid_no_object(PoseVLA(PoseVLAConfig.tiny()))
    model.eval()
    return model


@pytest.fixture(name="spin_until")
def spin_until_fixture():
    return spin_until
