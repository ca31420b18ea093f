"""ROS test helpers: spin an executor until something holds, call a Trigger service, run a
node in its own process. rclpy and message packages are imported only when used."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from test.helpers.paths import REPO
from test.helpers.waiting import poll


def spin_until(executor, predicate, timeout: float = 30.0, step: float = 0.05) -> bool:
    """Spin ``executor`` until ``predicate()`` is true or ``timeout`` seconds pass."""
    return poll(predicate, timeout, step, step=lambda dt: executor.spin_once(timeout_sec=dt))


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
    """``python -m <module> --ros-args ...`` in a subprocess (same env and ROS domain), its
    output in ``log_path``; ``stop`` sends SIGINT, then SIGKILL."""

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
