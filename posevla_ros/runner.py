"""Running nodes: the in-process launch-graph runner (``posevla run policy --robot panda``,
``make demo``), the executor choice (``make_executor``) and two small helpers the nodes
share (a newest-wins worker thread and a keyed log throttle).

``run_graph`` is the stand-in for ``ros2 launch posevla_ros policy.launch.py`` where
ros2launch is not installed (the wheel-based venv): it reads the SAME parameter files the
launch files pass (config/policy.yaml, config/executor.yaml, config/robots/<robot>.yaml),
applies overrides, constructs the node classes in one process and spins them on one
executor (``make_executor``).
"""
from __future__ import annotations

import threading
import time
import traceback
from typing import Any, Callable


class LatestWorker:
    """One daemon thread that runs ``fn(item)`` on the newest submitted item. Submitting
    while an item is still waiting replaces it (newest wins; the old one is counted in
    ``dropped``). ``submit`` never blocks on ``fn``, so ROS callbacks stay instant.
    ``min_period_s`` spaces the starts of consecutive runs (rate limit)."""

    def __init__(self, fn: Callable[[Any], None], name: str = "worker", min_period_s: float = 0.0,
                 on_error: Callable[[BaseException, str], None] | None = None) -> None:
        self._fn, self._on_error = fn, on_error
        self.min_period_s = float(min_period_s)
        self._cv = threading.Condition()
        self._item: Any = None
        self._has_item = self._busy = False
        self._stop = False
        self._last_start = -1e18
        self.dropped = self.processed = 0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: Any) -> None:
        with self._cv:
            if self._has_item:
                self.dropped += 1
            self._item, self._has_item = item, True
            self._cv.notify_all()

    def idle(self) -> bool:
        with self._cv:
            return not self._has_item and not self._busy

    def wait_idle(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        with self._cv:
            while self._has_item or self._busy:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
            return True

    def stop(self, timeout: float = 5.0) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._stop and (not self._has_item or
                                          time.monotonic() - self._last_start < self.min_period_s):
                    wait = None if not self._has_item else self.min_period_s - (time.monotonic() - self._last_start)
                    self._cv.wait(wait)
                if self._stop:
                    return
                item, self._item, self._has_item = self._item, None, False
                self._busy = True
                self._last_start = time.monotonic()
            try:
                self._fn(item)
            except Exception as e:  # noqa: BLE001 - a bad item must not kill the worker
                if self._on_error is not None:
                    self._on_error(e, traceback.format_exc())
            finally:
                with self._cv:
                    self._busy = False
                    self.processed += 1
                    self._cv.notify_all()


class KeyedThrottle:
    """``logger.warn`` at most once per ``period_s`` per key (rclpy's own throttle keys on
    the call site, which would merge different reasons logged from one helper)."""

    def __init__(self, logger, period_s: float = 5.0) -> None:
        self._logger, self.period_s = logger, period_s
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def __call__(self, key: str, msg: str, level: str = "warn") -> None:
        now = time.monotonic()
        with self._lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            n = self.counts[key]
            if now - self._last.get(key, -1e18) < self.period_s:
                return
            self._last[key] = now
        getattr(self._logger, level)(f"{msg} [{key}, seen {n}x]")


# --------------------------------------------------------------------------- the graph runner
NODE_FILES = {"policy": "policy.yaml", "executor": "executor.yaml"}


def _node_classes() -> dict[str, tuple[str, str]]:
    """graph name -> (module, class). The sim node is another engineer's module."""
    return {
        "policy": ("posevla_ros.policy_node", "PolicyNode"),
        "executor": ("posevla_ros.executor_node", "ExecutorNode"),
        "sim": ("posevla_ros.sim_node", "SimNode"),
    }


def node_parameters(name: str, robot: str, overrides: dict | None = None,
                    checkpoint: str | None = None, sim_time: bool = False) -> dict[str, Any]:
    """The parameter values the launch files give node ``name`` (policy | executor | sim):
    config/<node>.yaml, then for the executor the robot config, then ``overrides`` (values
    typed like the declared defaults; unknown names are ignored for that node).
    ``sim_time``: the graph contains the sim, which publishes /clock (as sim_demo.launch.py)."""
    from posevla_ros import params as P

    values: dict[str, Any] = {"use_sim_time": True} if sim_time and name != "sim" else {}
    if name in NODE_FILES:
        values.update(P.load_params_file(P.config_path(NODE_FILES[name]), f"{name}_node"))
    if name == "executor":
        values.update(P.robot_executor_params(robot))
    if name == "sim":
        values["robot"] = robot
    if checkpoint and name == "policy":
        values["checkpoint"] = str(checkpoint)
    values.update(overrides or {})
    specs = P.NODE_PARAMS.get(f"{name}_node")
    if specs is None:
        return values
    return P.typed_overrides(specs, values)


def _to_ros_params(values: dict[str, Any]):
    from rclpy.parameter import Parameter

    return [Parameter(k, value=v) for k, v in values.items()]


def build_nodes(nodes: list[str], robot: str = "panda", overrides: dict | None = None,
                checkpoint: str | None = None, context=None, model=None) -> list:
    """Construct the node objects of ``nodes`` with their launch-file parameters."""
    import importlib

    classes = _node_classes()
    out = []
    for name in nodes:
        if name not in classes:
            raise ValueError(f"unknown node {name!r} (known: {sorted(classes)})")
        mod, cls = classes[name]
        klass = getattr(importlib.import_module(mod), cls)
        kwargs: dict[str, Any] = {"parameter_overrides": _to_ros_params(
            node_parameters(name, robot, overrides, checkpoint, sim_time="sim" in nodes))}
        if context is not None:
            kwargs["context"] = context
        if name == "policy" and model is not None:
            kwargs["model"] = model
        out.append(klass(**kwargs))
    return out


def make_executor(context=None, num_threads: int = 4):
    """The executor every posevla process spins: rclpy's C++ ``EventsExecutor`` where it
    exists (rclpy.experimental, Kilted and newer), else ``MultiThreadedExecutor``.
    ``POSEVLA_EXECUTOR=multi-threaded`` (or ``events``) forces the choice.

    Why: the Python executors rebuild the whole wait set (every subscription, service,
    timer and QoS event of every node) for each ready callback. An in-process sim graph
    takes ~500 callbacks/s (/clock at 100 Hz and /joint_states at 50 Hz into several
    nodes, five camera topics at 10 Hz), which kept the spin thread on the GIL ~90% of the
    time and slowed the sim thread to ~0.1x real time; with the EventsExecutor the same
    graph runs at ~1x. The EventsExecutor runs callbacks one at a time; our callbacks
    never wait on another callback (inference, disk writes and service calls that wait
    run on their own threads), so that is safe here. Spin it with ``spin_once`` loops:
    here a node process blocked in ``EventsExecutor.spin()`` stopped answering its
    services after the first call, while the ``spin_once`` loop serves them all."""
    import os

    choice = os.environ.get("POSEVLA_EXECUTOR", "events").strip().lower()
    if choice not in ("events", "multi-threaded"):
        raise ValueError(f"POSEVLA_EXECUTOR={choice!r}: use 'events' or 'multi-threaded'")
    if choice == "events":
        try:
            from rclpy.experimental import EventsExecutor
        except ImportError:        # Humble / Jazzy: no EventsExecutor in rclpy
            pass
        else:
            return EventsExecutor(context=context)
    from rclpy.executors import MultiThreadedExecutor

    return MultiThreadedExecutor(num_threads=num_threads, context=context)


def spin_nodes(nodes: list, until: Callable[[], bool] | None = None, context=None, num_threads: int = 4) -> None:
    """Spin already-built ``nodes`` on one executor (``make_executor``) until their context
    shuts down or ``until()`` returns True; the nodes are taken off the executor again (the
    caller destroys them). The one spin loop of every posevla process: node executables,
    ``run_graph``, and the in-process demo/evaluate/collect graphs."""
    import rclpy

    ex = make_executor(context, num_threads)
    for n in nodes:
        ex.add_node(n)
    try:
        while rclpy.ok(context=context) and not (until is not None and until()):
            ex.spin_once(timeout_sec=0.1)
    finally:
        for n in nodes:
            try:
                ex.remove_node(n)
            except Exception:  # noqa: BLE001 - best-effort teardown
                pass
        ex.shutdown()


def close_graph(nodes: list, context) -> None:
    """Destroy ``nodes`` (last built first; a failing destroy does not stop the rest) and shut
    their context down: the teardown of every in-process graph."""
    import rclpy

    for n in reversed(nodes):
        try:
            n.destroy_node()
        except Exception:  # noqa: BLE001 - best-effort teardown
            pass
    if context.ok():
        rclpy.shutdown(context=context)


def run_graph(nodes: list[str], robot: str = "panda", overrides: dict | None = None,
              checkpoint: str | None = None, model=None, until: Callable[[], bool] | None = None,
              num_threads: int = 4) -> int:
    """Run ``nodes`` (e.g. ["policy", "executor"] or ["sim", "policy", "executor"]) in this
    process until Ctrl-C or ``until()`` returns True. Returns an exit code."""
    import rclpy
    from rclpy.executors import ExternalShutdownException

    context = rclpy.Context()
    rclpy.init(context=context)
    built: list = []
    try:
        built = build_nodes(nodes, robot, overrides, checkpoint, context=context, model=model)
        spin_nodes(built, until, context, num_threads)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        close_graph(built, context)
    return 0
