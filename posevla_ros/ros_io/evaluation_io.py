"""The evaluator's ``EpisodeIO`` over ROS (posevla_ros.logic.evaluation runs the loop): services for
hold / release / reset / success / recording, the instruction topic, and the node's operator
input, report media and absent-object watch. evaluator_node builds the clients and hands
itself to ``RosEpisodeIO``; the message types are imported where they are used.

Service calls wait on their future from the loop thread while the node's executor spins in
another: ``call_service`` never spins, and gives up with one RuntimeError on a timeout or
once the node closes (teardown: nobody spins for the answer any more).
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from std_msgs.msg import String
from std_srvs.srv import Trigger

from posevla_ros.srv import ResetEpisode, SaveEpisode


def call_service(cli, request, what: str, timeout_s: float, stop: Callable[[], bool] = lambda: False):
    """``cli.call_async(request)``'s result: RuntimeError when the service is not discovered or
    does not answer within ``timeout_s`` (each), or once ``stop()``."""
    end = time.monotonic() + timeout_s
    while not cli.wait_for_service(timeout_sec=0.2):
        if stop() or time.monotonic() > end:
            raise RuntimeError(f"service {cli.srv_name} is not available ({what})")
    return wait_future(cli.call_async(request), timeout_s, f"{cli.srv_name} ({what})", stop)


def wait_future(fut, timeout: float, what: str, stop=lambda: False):
    """The future's result, or RuntimeError after ``timeout`` s or once ``stop()`` (teardown)."""
    ev = threading.Event()
    fut.add_done_callback(lambda _f: ev.set())
    end = time.monotonic() + timeout
    while not ev.wait(0.1):
        if stop() or time.monotonic() > end:
            fut.cancel()
            raise RuntimeError(f"{what}: {'aborted' if stop() else f'no answer within {timeout:.0f} s'}")
    return fut.result()


class RosEpisodeIO:
    """EpisodeIO over an EvaluatorNode's service clients, publisher, operator input, media
    collector and absent-object watch. Its methods run on the evaluation loop's thread."""

    def __init__(self, node) -> None:
        self.n = node

    def call(self, cli, request, what: str):
        """``cli``'s answer to ``request`` (discovery and answer each within service_timeout_s)."""
        return call_service(cli, request, what, self.n.p["service_timeout_s"], self.n.closing.is_set)

    def now(self) -> float:
        return self.n.get_clock().now().nanoseconds * 1e-9

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def _trigger(self, cli, what: str, must: bool = True) -> str:
        if cli is None:
            return ""
        r = self.call(cli, Trigger.Request(), what)
        if must and not r.success:
            raise RuntimeError(f"{cli.srv_name} failed: {r.message}")
        return r.message

    def hold(self) -> None:
        if self.n.on_hold is not None:
            self.n.on_hold()
        self._trigger(self.n.cli_stop, "hold the robot")
        self._trigger(self.n.cli_pause, "pause the policy")

    def release(self) -> None:
        end = time.monotonic() + self.n.p["service_timeout_s"]
        while self.now() <= 0.0:                 # sim time: wait for the first /clock
            if time.monotonic() > end:
                raise RuntimeError("the node clock is at 0: no /clock (use_sim_time without a sim?)")
            time.sleep(0.05)
        self._trigger(self.n.cli_resume, "resume robot + policy")
        if self.n.on_release is not None:
            self.n.on_release()

    def reset(self, seed: int, task: str) -> str:
        if self.n.cli_reset is None:
            return self._operator_reset()

        r = self.call(self.n.cli_reset, ResetEpisode.Request(seed=int(seed), task=task), "reset")
        if not r.success:
            raise RuntimeError(f"reset failed: {r.message}")
        self.n.operator.begin()
        return r.instruction

    def _operator_reset(self) -> str:
        keys = "Enter, or " if self.n.p["keyboard"] else ""
        self.n.get_logger().info(f"episode {len(self.n.loop.records)}: reset the scene, then {keys}"
                                 f"`ros2 service call /evaluator/ready std_srvs/srv/Trigger`; mark the outcome "
                                 f"with /evaluator/success or /evaluator/failure{' (keys y / b)' if keys else ''}")
        if not self.n.operator.wait_ready(lambda: self.n.loop.aborted):
            raise RuntimeError("aborted before the episode started")
        return self.n.p["instruction"]

    def send_instruction(self, text: str) -> None:
        self.n.pub_instruction.publish(String(data=text))

    def outcome(self) -> str | None:
        """Operator mark first; else the success predicate (false = undecided)."""
        mark = self.n.operator.outcome()
        if mark is not None or self.n.cli_success is None:
            return mark

        ok = self.call(self.n.cli_success, Trigger.Request(), "success check").success
        return "success" if ok else None

    def record_start(self, instruction: str) -> None:
        end = time.monotonic() + 5.0   # let the recorder see the instruction first
        while self.n.recorder_instruction != instruction and time.monotonic() < end:
            self.send_instruction(instruction)
            time.sleep(0.1)
        self._trigger(self.n.cli_rec.get("start"), "start recording")

    def record_stop(self) -> int | None:
        if self.n.cli_save is None:
            return None
        r = self.call(self.n.cli_save, SaveEpisode.Request(), "save the rollout")
        if not r.success:
            raise RuntimeError(f"{self.n.cli_save.srv_name} failed: {r.message}")
        return int(r.episode_index)

    def record_discard(self) -> None:
        self._trigger(self.n.cli_rec.get("discard"), "discard the rollout")

    def media_begin(self, episode: int) -> None:
        self.n.media.begin(episode, self.now())

    def watch_begin(self, instruction: str) -> None:
        self.n.watcher.begin(instruction)

    def watch(self) -> dict:
        return self.n.watcher.snapshot()

    def media_end(self, episode: int) -> None:       # the loop's last call of every episode
        self.n.operator.end()
        self.n.media.end(episode)
