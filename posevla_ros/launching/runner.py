"""Running nodes: the in-process launch-graph runner (``posevla run policy --robot sim_panda``,
``make demo``) and the executor choice (``make_executor``).

``run_graph`` / ``run_specs`` are the stand-in for ``ros2 launch`` where ros2launch is not
installed (the wheel-based venv): they build the node graphs of posevla_ros.launching.graphs - the
same description the launch files are made from, so the same parameter files, values and
remappings - construct the node classes in one process and spin them on one executor
(``make_executor``).

``preload`` imports the heavy modules of a process's nodes in the main thread before the first
node is built (``build_graph``, ``nodes.main.run_node``). Why: nodes start threads in their
constructors (sim_node's physics thread) while later constructors still import; policy_node's
model load imported torch while the physics thread ran scipy's Rotation, whose array-API check
reads ``sys.modules["torch"]``, and got the half-imported module: "sim step failed:
AttributeError(partially initialized module 'torch' has no attribute 'Tensor')".
"""
from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
from typing import Any, Callable

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions

from posevla_ros.launching.graphs import build
from posevla_ros.launching.node_spec import with_overrides

# --------------------------------------------------------------------------- heavy imports
# node module -> what its constructor or its threads import lazily: "module", or "module:function"
# (called: mujoco must be imported through posevla_core.sim.gl.import_mujoco, which picks the GL
# backend first). A module that is not installed is skipped: the node itself reports it.
PRELOAD: dict[str, tuple[str, ...]] = {
    "posevla_ros.nodes.policy_node": ("torch", "transformers", "scipy.spatial.transform", "posevla_core.policies.base",
                                "posevla_core.policies.small.modeling"),
    "posevla_ros.nodes.sim_node": ("posevla_core.sim.gl:import_mujoco", "scipy.spatial.transform", "posevla_core.sim.mujoco.env"),
    "posevla_ros.nodes.executor_node": ("scipy.spatial.transform", "pinocchio", "posevla_core.geometry.kinematics"),
    "posevla_ros.nodes.teleop_node": ("scipy.spatial.transform", "pinocchio", "posevla_core.geometry.kinematics"),
    "posevla_ros.nodes.evaluator_node": ("scipy.spatial.transform", "scipy.stats", "pinocchio", "posevla_core.geometry.kinematics"),
    "posevla_ros.nodes.recorder_node": ("scipy.spatial.transform", "posevla_core.data"),
}


def preload(node_modules) -> list[str]:
    """Import ``PRELOAD``'s entries of ``node_modules`` (e.g. "posevla_ros.nodes.sim_node") in this
    thread, once each; returns the entries that imported. Call it in the main thread before any
    node of the process starts a thread (module docstring)."""

    done: list[str] = []
    for entry in dict.fromkeys(e for m in node_modules for e in PRELOAD.get(m, ())):
        module, _, func = entry.partition(":")
        try:
            mod = importlib.import_module(module)
            if func:
                getattr(mod, func)()
        except ImportError:
            continue
        done.append(entry)
    return done


# --------------------------------------------------------------------------- the graph runner
def _to_ros_params(values: dict[str, Any]):
    return [Parameter(k, value=v) for k, v in values.items()]


def build_graph(specs: list, context=None, model=None, kwargs: dict[str, dict] | None = None) -> list:
    """Construct the nodes of ``specs`` (posevla_ros.launching.node_spec.NodeSpec) in this process, with
    the parameters the launch files give them and the launch remappings. ``model``: a
    prebuilt policy model (tests); ``kwargs``: extra constructor arguments per node name.
    If one node fails to build, the ones built so far are destroyed and the error raised."""
    out: list = []
    preload(spec.target.split(":")[0] for spec in specs)
    try:
        for spec in specs:
            kw: dict[str, Any] = {"parameter_overrides": _to_ros_params(spec.parameters())}
            kw.update((kwargs or {}).get(spec.name, {}))
            if spec.remappings:
                kw["cli_args"] = ["--ros-args"] + [a for src, dst in spec.remappings if src != dst
                                                   for a in ("-r", f"{src}:={dst}")]
            if context is not None:
                kw["context"] = context
            if spec.name == "policy_node" and model is not None:
                kw["model"] = model
            out.append(spec.node_class()(**kw))
    except BaseException:
        destroy_nodes(out)
        raise
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

    choice = os.environ.get("POSEVLA_EXECUTOR", "events").strip().lower()
    if choice not in ("events", "multi-threaded"):
        raise ValueError(f"POSEVLA_EXECUTOR={choice!r}: use 'events' or 'multi-threaded'")
    if choice == "events":
        try:
            # rclpy's EventsExecutor: Kilted and later only
            from rclpy.experimental import EventsExecutor
        except ImportError:        # Humble / Jazzy: no EventsExecutor in rclpy
            pass
        else:
            return EventsExecutor(context=context)

    return MultiThreadedExecutor(num_threads=num_threads, context=context)


def spin_nodes(nodes: list, until: Callable[[], bool] | None = None, context=None, num_threads: int = 4) -> None:
    """Spin already-built ``nodes`` on one executor (``make_executor``) until their context
    shuts down or ``until()`` returns True; the nodes are taken off the executor again (the
    caller destroys them). The one spin loop of every posevla process: node executables,
    ``run_graph``, and the in-process demo/evaluate/collect graphs."""

    ex = make_executor(context, num_threads)
    for n in nodes:
        ex.add_node(n)
    try:
        while rclpy.ok(context=context) and not SHUTDOWN.is_set() and not (until is not None and until()):
            ex.spin_once(timeout_sec=0.1)
    finally:
        for n in nodes:
            try:
                ex.remove_node(n)
            except Exception:  # noqa: BLE001 - best-effort teardown
                pass
        ex.shutdown()


def destroy_nodes(nodes: list) -> None:
    """Destroy ``nodes``, last built first; a failing destroy does not stop the rest. Each
    node's ``destroy_node`` stops its own threads before its publishers go away."""
    for n in reversed(nodes):
        try:
            n.destroy_node()
        except Exception:  # noqa: BLE001 - best-effort teardown
            pass


def close_graph(nodes: list, context) -> None:
    """Destroy ``nodes`` (``destroy_nodes``), then shut their context down: the teardown of
    every in-process graph. The context must still be up while the nodes stop, so that a
    worker finishing its last item can still publish: processes init rclpy without its
    signal handlers (``init_context``), and Ctrl-C arrives as KeyboardInterrupt here."""

    destroy_nodes(nodes)
    if context.ok():
        rclpy.shutdown(context=context)


SHUTDOWN = threading.Event()     # set by SIGINT / SIGTERM (init_context); every spin loop ends on it


def init_context(args: list[str] | None = None, context=None):
    """rclpy.init without rclpy's signal handlers, and our own: SIGINT / SIGTERM set
    ``SHUTDOWN``, the spin loop (``spin_nodes``) returns, and ``close_graph`` stops the
    nodes (their worker threads first) before the context goes down.

    Why: with rclpy's handlers, Ctrl-C shut the context down while node threads (the
    policy's inference worker) still ran, and their last publish raised RCLError
    tracebacks; and a KeyboardInterrupt raised inside a callback that the C++
    EventsExecutor was running came out as a pybind11 RuntimeError traceback. A second
    signal exits at once."""

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_signal)     # also when a script's background job inherited SIG_IGN
        signal.signal(signal.SIGTERM, _on_signal)
    context = context if context is not None else rclpy.Context()
    rclpy.init(args=args, context=context, signal_handler_options=SignalHandlerOptions.NO)
    return context


def _on_signal(signum, _frame) -> None:
    if SHUTDOWN.is_set():
        print(f"signal {signum} again: exiting now", file=sys.stderr, flush=True)
        os._exit(128 + signum)
    SHUTDOWN.set()


def run_specs(specs: list, model=None, until: Callable[[dict], bool] | None = None, num_threads: int = 4,
              kwargs: dict[str, dict] | None = None, after_build: Callable[[dict], None] | None = None) -> dict:
    """Build ``specs`` in a fresh context, spin them until Ctrl-C or ``until(nodes)``, tear
    down. ``nodes`` / the result: {node name: node} (destroyed at return; their result
    attributes stay readable). ``after_build(nodes)`` runs before spinning (wire in-process
    drivers)."""

    context = init_context()
    built: list = []
    by_name: dict = {}
    try:
        built = build_graph(specs, context, model=model, kwargs=kwargs)
        by_name = {s.name: n for s, n in zip(specs, built)}
        if after_build is not None:
            after_build(by_name)
        spin_nodes(built, (lambda: until(by_name)) if until is not None else None, context, num_threads)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        close_graph(built, context)
    return by_name


def graph_finished(nodes: dict) -> bool:
    """Whether a node of ``nodes`` ({name: node}) has ended the run: its ``finished`` event is
    set (sim_node with ``exit_on_success``, at the episode's first success)."""
    return any(isinstance(getattr(n, "finished", None), threading.Event) and n.finished.is_set()
               for n in nodes.values())


def graph_specs(graph: str, args: dict | None = None, overrides: dict | None = None) -> list:
    """The NodeSpecs ``run_graph`` runs: ``graphs.build(graph, args)``, then ``overrides`` on
    every node that declares them (``node_spec.with_overrides``: a name no node of the graph
    declares is a ConfigError)."""
    return with_overrides(build(graph, args), overrides)


def run_graph(graph: str, args: dict | None = None, overrides: dict | None = None, model=None) -> int:
    """``posevla run <graph>``: the graph of launch/<graph>.launch.py (posevla_ros.launching.graphs) in
    this process until Ctrl-C, or until a node ends the run (``graph_finished``: sim-demo with
    ``-p exit_on_success=true``). ``overrides``: extra parameter values for every node that
    declares them (``-p name=value``). Returns an exit code."""
    run_specs(graph_specs(graph, args, overrides), model=model, until=graph_finished)
    return 0
