"""Pose-VLA on an arm: policy_node + executor_node (+ rviz2).

    ros2 launch posevla_ros policy.launch.py robot:=panda checkpoint:=/path/to/ckpt \
        camera_ns:=/camera backend:=joint_trajectory use_sim_time:=false rviz:=true

Parameters: config/policy.yaml, config/executor.yaml, then config/robots/<robot>.yaml
(turned into executor parameters by posevla_ros.params.robot_executor_params, the same
function the in-process runner `posevla run policy --robot <robot>` uses).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from posevla_ros import params as P

ARGS = {
    "robot": ("panda", "robot config: config/robots/<robot>.yaml (or a path to a YAML file)"),
    "checkpoint": ("", "Pose-VLA checkpoint directory; empty = the shipped demo checkpoint"),
    "camera_ns": ("/camera", "camera driver namespace (color/image_raw, color/camera_info, "
                             "aligned_depth_to_color/image_raw)"),
    "use_sim_time": ("false", "use /clock"),
    "backend": ("joint_trajectory", "joint_trajectory | moveit"),
    "rviz": ("false", "start rviz2 with config/rviz/posevla.rviz"),
    "camera_pose_topic": ("", "PoseStamped of a moving camera (sim: /sim/camera_pose); empty = tf2 / calibration"),
    "execution_mode": ("replace", "replace (receding horizon) | complete (finish each keyframe plan first)"),
}


def _nodes(context):
    get = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    sim_time = get("use_sim_time").lower() in ("1", "true", "yes")
    share = P.share_dir()
    policy_overrides = {"use_sim_time": sim_time}
    if get("checkpoint"):
        policy_overrides["checkpoint"] = get("checkpoint")
    executor_overrides = dict(P.robot_executor_params(get("robot")), backend=get("backend"),
                              use_sim_time=sim_time, execution_mode=get("execution_mode"))
    if get("camera_pose_topic"):
        executor_overrides["camera_pose_topic"] = get("camera_pose_topic")
    return [
        Node(package="posevla_ros", executable="policy_node", name="policy_node", output="screen",
             parameters=[str(share / "config" / "policy.yaml"), policy_overrides],
             remappings=P.camera_remappings(get("camera_ns"))),
        Node(package="posevla_ros", executable="executor_node", name="executor_node", output="screen",
             parameters=[str(share / "config" / "executor.yaml"), executor_overrides]),
    ]


def generate_launch_description() -> LaunchDescription:
    rviz_config = [FindPackageShare("posevla_ros"), "/config/rviz/posevla.rviz"]
    return LaunchDescription(
        [DeclareLaunchArgument(k, default_value=v, description=d) for k, (v, d) in ARGS.items()]
        + [OpaqueFunction(function=_nodes),
           Node(package="rviz2", executable="rviz2", name="rviz2", arguments=["-d", rviz_config],
                parameters=[{"use_sim_time": LaunchConfiguration("use_sim_time")}],
                condition=IfCondition(LaunchConfiguration("rviz")))])
