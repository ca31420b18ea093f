"""The one ``main()`` of every node executable (``ros2 run posevla_ros <node>``)."""
from __future__ import annotations

import sys
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException

from posevla_ros.launching.runner import init_context, preload, spin_nodes


def run_node(factory: Callable[[], object], argv: list[str] | None = None, num_threads: int = 2,
             done: Callable[[object], bool] | None = None, exit_code: Callable[[object], int] | None = None) -> int:
    """rclpy.init, build the node, spin it (``runner.spin_nodes``) until Ctrl-C / shutdown (or
    ``done(node)``), then clean up. A bad checkpoint or config is one clear line on stderr
    and exit status 1, not a traceback."""

    context = init_context(argv if argv is not None else sys.argv)   # Ctrl-C ends the spin loop, see there
    node = None
    try:
        preload([_module_name(factory)])       # heavy imports before the node starts its threads
        node = factory(context=context)
        spin_nodes([node], None if done is None else (lambda: done(node)), context, num_threads=num_threads)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (FileNotFoundError, ValueError) as e:
        print(f"{getattr(factory, '__name__', 'node')}: {e}", file=sys.stderr)
        return 1
    finally:
        if node is not None:
            node.destroy_node()                  # stops the node's threads while the context is up
        if context.ok():
            rclpy.shutdown(context=context)
    return 0 if exit_code is None or node is None else exit_code(node)


def _module_name(factory) -> str:
    """The importable name of ``factory``'s module, also under ``python -m`` (where the class
    lives in ``__main__``, whose spec keeps the real name)."""
    name = getattr(factory, "__module__", "") or ""
    spec = getattr(sys.modules.get(name), "__spec__", None)
    return spec.name if spec is not None and spec.name else name
