"""A recorder killed with SIGKILL in another process keeps the episodes it finished before."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from posevla_core.data import LeRobotReader
from posevla_ros.logic.recording import EpisodeRecorder
from test.helpers.paths import REPO
from test.helpers.recorder import fk, obs


RECORDER_SCRIPT = r"""
import sys, time
import numpy as np
from posevla_ros.logic.recording import EpisodeRecorder, Observation, make_writer
from posevla_core.geometry import se3
root, n_done = sys.argv[1], int(sys.argv[2])
fk = lambda q: se3.make_T([float(np.sum(q)), 0.0, 0.5], [0, 0, 0, 1])
w = make_writer(root, 10.0, "test/crash", True)
r = EpisodeRecorder(w, fk, 10.0)
K = np.array([[60.0, 0, 32], [0, 60.0, 24], [0, 0, 1]])
T = se3.make_T([1.0, 0.0, 1.0], [0, 0, 0, 1])
t = 0.0
for ep in range(n_done + 1):
    r.start(f"episode {ep}")
    for k in range(12 if ep < n_done else 10**9):
        t += 0.1
        r.add(Observation(t, np.full((48, 64, 3), k % 255, np.uint8), np.full((48, 64), 0.7, np.float32), K,
                          np.full(7, 0.01 * k), 1.0, T))
        if ep == n_done and k == 5:
            print("RECORDING", flush=True)
    if ep < n_done:
        r.stop()
        print(f"SAVED {ep}", flush=True)
"""


def test_sigkill_keeps_earlier_episodes(tmp_path):
    """A real recorder process is SIGKILLed in the middle of episode 2: episodes 0 and 1 are
    intact, episode 2 is cleanly absent (or complete), and the dataset accepts new episodes."""
    root = tmp_path / "ds"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", RECORDER_SCRIPT, str(root), "2"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("RECORDING"):
            time.sleep(0.3)
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, "".join(lines)
    assert "SAVED 1\n" in lines
    ds = LeRobotReader(root)
    assert ds.num_episodes in (2, 3)
    for ep in range(2):
        assert ds.episode_length(ep) == 12
    # the dataset keeps working after the crash
    from posevla_ros.logic.recording import make_writer

    w = make_writer(str(root), 10.0, "test/crash", True)
    r = EpisodeRecorder(w, fk, 10.0)
    r.start("after crash")
    for k in range(3):
        r.add(obs(0.1 * k + 0.05))
    r.stop()
    w.close()
    assert LeRobotReader(root).num_episodes == ds.num_episodes + 1
