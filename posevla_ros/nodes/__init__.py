"""The ROS 2 nodes, one file each: thin adapters between topics and posevla_ros.logic.

The set of nodes is the set of ``*_node.py`` files in this directory, and nothing else: each
``<name>.py`` has the node class (``sim_node`` -> ``SimNode``) and ``main()``, the body of
``ros2 run posevla_ros <name>``. setup.py (console scripts), CMakeLists.txt (the
``lib/posevla_ros/<name>`` executables), the launch graphs and docs/reference.md all list
the nodes from these files, so a new node is one new file.
"""
from __future__ import annotations

from pathlib import Path

#: every node executable, sorted: the stems of this directory's ``*_node.py`` files
NODE_NAMES: tuple[str, ...] = tuple(sorted(p.stem for p in Path(__file__).resolve().parent.glob("*_node.py")))


def node_module(name: str) -> str:
    """The module of node ``name``: ``policy_node`` -> ``posevla_ros.nodes.policy_node``."""
    if name not in NODE_NAMES:
        raise ValueError(f"unknown node {name!r} (known: {', '.join(NODE_NAMES)})")
    return f"{__name__}.{name}"


def node_class_name(name: str) -> str:
    """The class of node ``name`` in its module: ``sim_node`` -> ``SimNode``."""
    return "".join(part.capitalize() for part in name.split("_"))
