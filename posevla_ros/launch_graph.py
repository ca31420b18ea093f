"""launch_ros side of posevla_ros.graphs: a graph as a LaunchDescription. Imported only by
the launch files (it needs ``launch`` and ``launch_ros``, which exist on a ROS install).

Each launch file is one call, ``describe("<graph>")``: the graph's arguments become
DeclareLaunchArgument, and an OpaqueFunction builds the nodes from ``graphs.build`` with the
argument values, as ``launch_ros.actions.Node(**spec.launch_kwargs())``. A bad argument
(an instruction the sim cannot stage, an unknown teleop mode) stops the launch with one line.
"""
from __future__ import annotations

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from posevla_ros import graphs as G


def launch_nodes(graph: str, context) -> list:
    """The graph's nodes for the launch configuration in ``context``."""
    given = {k: LaunchConfiguration(k).perform(context) for k in G.ARGS[graph]}
    try:
        specs = G.build(graph, given)
    except ValueError as e:
        print(f"[posevla_ros] {graph}: {e}", flush=True)
        return [Shutdown(reason=str(e))]
    return [Node(**spec.launch_kwargs()) for spec in specs]


def describe(graph: str) -> LaunchDescription:
    """The LaunchDescription of ``graph`` (+ rviz2 when rviz:=true)."""
    args = [DeclareLaunchArgument(k, default_value=G.launch_default(d), description=desc)
            for k, (d, desc) in G.ARGS[graph].items()]
    extra = []
    if "rviz" in G.ARGS[graph]:
        extra.append(Node(package="rviz2", executable="rviz2", name="rviz2",
                          arguments=["-d", [FindPackageShare(G.PACKAGE), "/config/rviz/posevla.rviz"]],
                          condition=IfCondition(LaunchConfiguration("rviz"))))
    return LaunchDescription(args + [OpaqueFunction(function=lambda context: launch_nodes(graph, context))]
                             + extra)
