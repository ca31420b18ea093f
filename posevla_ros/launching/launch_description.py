"""launch_ros side of posevla_ros.launching.graphs: a graph as a LaunchDescription. Imported only by
the launch files (it needs ``launch`` and ``launch_ros``, which exist on a ROS install).

Each launch file is one call, ``describe("<graph>")``: the graph's arguments become
DeclareLaunchArgument, and an OpaqueFunction builds the nodes from ``graphs.build`` with the
argument values, as ``launch_ros.actions.Node(**spec.launch_kwargs())``. A bad argument
(an instruction the sim cannot stage, an unknown teleop mode) stops the launch with one line.
"""
from __future__ import annotations

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from posevla_ros import params
from posevla_ros.launching import graphs


def launch_nodes(graph: str, context) -> list:
    """The graph's nodes for the launch configuration in ``context`` (+ rviz2 with rviz:=true)."""
    given = {k: LaunchConfiguration(k).perform(context) for k in graphs.ARGS[graph]}
    try:
        specs = graphs.build(graph, given)
    except ValueError as e:
        print(f"[posevla_ros] {graph}: {e}", flush=True)
        return [Shutdown(reason=str(e))]
    nodes = [Node(**spec.launch_kwargs(), on_exit=[Shutdown(reason=f"{spec.name} finished")] if spec.ends_graph else None)
             for spec in specs]
    if graphs.typed_args(graph, given).get("rviz"):
        nodes.append(rviz_node(graphs.rviz_camera_ns(graph, given)))
    return nodes


def rviz_node(camera_ns: str) -> Node:
    """rviz2 with config/rviz/posevla.rviz: the robot from /robot_description, TF, the prediction
    markers, the target poses and the camera image, remapped to the graph's ``camera_ns``."""
    return Node(package="rviz2", executable="rviz2", name="rviz2", output="screen",
                arguments=["-d", str(params.config_path("rviz/posevla.rviz"))],
                remappings=params.camera_remappings(camera_ns))


def describe(graph: str) -> LaunchDescription:
    """The LaunchDescription of ``graph``: its arguments, then its nodes (``launch_nodes``)."""
    args = [DeclareLaunchArgument(k, default_value=graphs.launch_default(d), description=desc)
            for k, (d, desc) in graphs.ARGS[graph].items()]
    return LaunchDescription(args + [OpaqueFunction(function=lambda context: launch_nodes(graph, context))])
