"""One node of a launch graph (``NodeSpec``): its executable, parameter files, parameter values
and remappings, as both launch_ros and the in-process runner start it; and the parameter
overrides (``posevla run -p``, the in-process apps' per-node values) applied to a graph's nodes.

No rclpy here: the parameter tables come from posevla_ros.params, the node set from
posevla_ros.nodes (the ``*_node.py`` files)."""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posevla_ros.nodes import node_class_name, node_module
from posevla_ros.param_schema import ParamSpec, unknown_key_error
from posevla_ros.params import NODE_PARAMS, config_path, load_params_file, robot_executor_params, typed_overrides

PACKAGE = "posevla_ros"


@dataclass(frozen=True)
class NodeSpec:
    """One node of a graph. ``params`` are applied after ``param_files`` (config/<file>,
    section ``name``), exactly as launch_ros applies ``parameters=[files..., params]``."""

    name: str                                   # ROS node name = params-file section
    executable: str                             # lib/posevla_ros/<executable> (posevla_ros.nodes.NODE_NAMES)
    target: str                                 # "module:Class" for the in-process runner
    param_files: tuple[str, ...] = ()           # under config/
    params: dict = field(default_factory=dict)  # typed values
    remappings: tuple[tuple[str, str], ...] = ()
    tty: bool = False                           # reads keys from the terminal

    @property
    def ends_graph(self) -> bool:
        """True for a node whose exit ends the whole graph (sim_node with exit_on_success:
        launch then shuts down, as the in-process runner stops)."""
        return bool(self.params.get("exit_on_success"))

    def file_paths(self) -> list[Path]:
        return [config_path(f) for f in self.param_files]

    def parameters(self) -> dict[str, Any]:
        """The parameter values the node starts with: files in order, then ``params``."""
        values: dict[str, Any] = {}
        for path in self.file_paths():
            values.update(load_params_file(path, self.name))
        values.update(self.params)
        return typed_overrides(node_param_specs(self.name), values)

    def launch_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``launch_ros.actions.Node`` for this node."""
        return dict(package=PACKAGE, executable=self.executable, name=self.name, output="screen",
                    emulate_tty=self.tty, parameters=[str(p) for p in self.file_paths()] + [dict(self.params)],
                    remappings=[tuple(r) for r in self.remappings])

    def node_class(self):
        module, cls = self.target.split(":")
        return getattr(importlib.import_module(module), cls)


def node_param_specs(node_name: str) -> list[ParamSpec]:
    """The declared parameters of ``node_name`` (posevla_ros.params.NODE_PARAMS)."""
    try:
        return NODE_PARAMS[node_name]
    except KeyError:
        raise ValueError(f"unknown node {node_name!r}") from None


def make_spec(name: str, values: dict[str, Any], robot: str | None = None, files: tuple[str, ...] = (),
              remappings=(), tty: bool = False) -> NodeSpec:
    """A NodeSpec whose ``params`` are the robot config's values this node declares, then
    ``values``, typed like the declarations."""
    specs = node_param_specs(name)
    merged: dict[str, Any] = {}
    if robot is not None:
        names = {s.name for s in specs}
        merged.update({k: v for k, v in robot_executor_params(robot).items() if k in names})
    merged.update(values)
    return NodeSpec(name, name, f"{node_module(name)}:{node_class_name(name)}", files,
                    typed_overrides(specs, merged, strict=True), tuple(tuple(r) for r in remappings), tty)


def with_overrides(specs: list[NodeSpec], overrides: dict[str, Any] | None = None,
                   per_node: dict[str, dict[str, Any]] | None = None) -> list[NodeSpec]:
    """``specs`` with more parameter values on top of the graph's.

    ``overrides``: {param: value} for every node that declares ``param`` (``posevla run -p
    name:=value``); a name that no node of ``specs`` declares is a ConfigError naming the
    closest one. ``per_node``: {node name without ``_node``: {param: value}}, each a parameter
    of that node (KeyError otherwise); a node not in ``specs`` is a ValueError."""
    if overrides:
        known = {"use_sim_time"} | {p.name for s in specs for p in node_param_specs(s.name)}
        for k in overrides:
            if k not in known:
                raise unknown_key_error(k, known, f"-p {k}")
        specs = [dataclasses.replace(s, params=dict(s.params, **typed_overrides(node_param_specs(s.name), overrides)))
                 for s in specs]
    if per_node:
        by_node = {f"{k}_node": v for k, v in per_node.items()}
        unknown = set(by_node) - {s.name for s in specs}
        if unknown:
            raise ValueError(f"overrides for nodes not in the graph: {sorted(unknown)}")
        specs = [dataclasses.replace(s, params=dict(s.params, **typed_overrides(
            node_param_specs(s.name), by_node[s.name], strict=True))) if s.name in by_node else s for s in specs]
    return specs
