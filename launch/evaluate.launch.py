"""Evaluation: policy + executor (launch/policy.launch.py) + recorder_node + evaluator_node
(+ sim_node in sim). K episodes: reset, instruction, timeout, success, a recorded rollout per
episode, results.jsonl + summary.json + report.html in `out`.

    ros2 launch posevla_ros evaluate.launch.py sim:=true task:=pick episodes:=10 out:=runs/eval
    ros2 launch posevla_ros evaluate.launch.py sim:=false robot:=panda instruction:="pick up the red cube"
        # real arm: the operator resets the scene at the terminal prompt and marks success
        # (keys y / b, or `ros2 service call /evaluator/success std_srvs/srv/Trigger`)

Without ros2launch: `posevla evaluate --checkpoint DIR --task pick --episodes K --out DIR`
(posevla_ros.evaluator_node.evaluate_main). Parameters: config/evaluator.yaml,
config/recorder.yaml, then config/robots/<robot>.yaml.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from posevla_ros import params as P

ARGS = {
    "robot": ("panda", "robot config: config/robots/<robot>.yaml (or a path to a YAML file)"),
    "checkpoint": ("", "Pose-VLA checkpoint directory; empty = the shipped demo checkpoint"),
    "task": ("pick", "task family (sim reset)"),
    "instruction": ("", "real arm: the instruction of every episode"),
    "episodes": ("10", "number of episodes"),
    "seed": ("1000", "first episode seed"),
    "timeout": ("30.0", "episode timeout (s)"),
    "out": ("runs/eval", "results directory"),
    "sim": ("true", "start sim_node (MuJoCo); false = real arm with an operator"),
    "camera_ns": ("/camera", "camera driver namespace"),
    "backend": ("joint_trajectory", "joint_trajectory | moveit"),
    "rviz": ("false", "start rviz2"),
}


def _nodes(context):
    get = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    sim = get("sim").lower() in ("1", "true", "yes")
    share = P.share_dir()
    robot = P.robot_executor_params(get("robot"))
    rec_keys = ("base_frame", "use_tf", "camera_to_base.translation", "camera_to_base.rotation_xyzw",
                "robot_description_file", "ee_link", "joint_names", "gripper_joint_names",
                "gripper_open_position", "gripper_closed_position")
    recorder = {k: v for k, v in robot.items() if k in rec_keys}
    recorder.update(root=get("out") + "/rollouts", camera_pose_topic="/sim/camera_pose" if sim else "",
                    use_sim_time=sim)
    evaluator = {k: v for k, v in robot.items() if k in rec_keys[4:]}
    evaluator.update(task=get("task"), instruction=get("instruction"), episodes=int(get("episodes")),
                     seed=int(get("seed")), timeout_s=float(get("timeout")), out=get("out"),
                     checkpoint=get("checkpoint"), use_sim_time=sim)
    if not sim:
        evaluator.update(reset_service="", success_service="", keyboard=True)
    remap = P.camera_remappings(get("camera_ns"))
    nodes = [
        Node(package="posevla_ros", executable="recorder_node", name="recorder_node", output="screen",
             parameters=[str(share / "config" / "recorder.yaml"), recorder], remappings=remap),
        Node(package="posevla_ros", executable="evaluator_node", name="evaluator_node", output="screen",
             emulate_tty=True, parameters=[str(share / "config" / "evaluator.yaml"), evaluator],
             remappings=remap[:1]),
    ]
    if sim:
        nodes.insert(0, Node(package="posevla_ros", executable="sim_node", name="sim_node", output="screen",
                             parameters=[{"robot": get("robot")}]))
    return nodes


def generate_launch_description() -> LaunchDescription:
    policy = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution(
            [FindPackageShare("posevla_ros"), "launch", "policy.launch.py"])),
        launch_arguments={"robot": LaunchConfiguration("robot"),
                          "checkpoint": LaunchConfiguration("checkpoint"),
                          "backend": LaunchConfiguration("backend"),
                          "rviz": LaunchConfiguration("rviz"),
                          "camera_ns": LaunchConfiguration("camera_ns"),
                          "use_sim_time": LaunchConfiguration("sim")}.items())
    return LaunchDescription(
        [DeclareLaunchArgument(k, default_value=v, description=d) for k, (v, d) in ARGS.items()]
        + [OpaqueFunction(function=_nodes), policy])
