"""Closed-loop sim demo: sim_node (MuJoCo Panda + RGB-D camera + controllers) + the same
policy_node and executor_node as on a real arm (launch/policy.launch.py), on sim time.

    ros2 launch posevla_ros sim_demo.launch.py robot:=panda checkpoint:=... rviz:=true

Without ros2launch: `posevla run sim-demo --robot panda` (posevla_ros.runner).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

ARGS = {
    "robot": ("panda", "robot config: config/robots/<robot>.yaml"),
    "checkpoint": ("", "Pose-VLA checkpoint directory; empty = the shipped demo checkpoint"),
    "backend": ("joint_trajectory", "joint_trajectory | moveit"),
    "rviz": ("false", "start rviz2"),
}


def generate_launch_description() -> LaunchDescription:
    sim = Node(package="posevla_ros", executable="sim_node", name="sim_node", output="screen",
               parameters=[{"robot": LaunchConfiguration("robot")}])  # publishes /clock
    policy = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution(
            [FindPackageShare("posevla_ros"), "launch", "policy.launch.py"])),
        launch_arguments={"robot": LaunchConfiguration("robot"),
                          "checkpoint": LaunchConfiguration("checkpoint"),
                          "backend": LaunchConfiguration("backend"),
                          "rviz": LaunchConfiguration("rviz"),
                          "camera_ns": "/camera",
                          "camera_pose_topic": "/sim/camera_pose",   # the sim moves its camera per episode
                          "execution_mode": "complete",              # one keyframe plan per episode
                          "use_sim_time": "true"}.items())
    return LaunchDescription(
        [DeclareLaunchArgument(k, default_value=v, description=d) for k, (v, d) in ARGS.items()]
        + [sim, policy])
