"""Demo collection: teleop_node + recorder_node (+ sim_node in sim).

    ros2 launch posevla_ros collect_demos.launch.py robot:=panda teleop:=joy out:=data/demos sim:=false
    ros2 launch posevla_ros collect_demos.launch.py teleop:=leader leader_topic:=/leader/joint_states

Teleop goes through the executor's safety checks and controller topics (robot config).
Episode control: teleop keys / buttons, or `ros2 service call /recorder/start|stop|discard
std_srvs/srv/Trigger`. Without ros2launch: `posevla collect --teleop ... --task ... --out ...`
(posevla_ros.teleop_node.collect_main). Parameters: config/teleop.yaml, config/recorder.yaml,
then config/robots/<robot>.yaml.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from posevla_ros import params as P

ARGS = {
    "robot": ("panda", "robot config: config/robots/<robot>.yaml (or a path to a YAML file)"),
    "teleop": ("keyboard", "keyboard | joy | leader"),
    "out": ("data/demos", "LeRobot dataset directory"),
    "task": ("", "instruction recorded with every episode (also settable on /posevla/instruction)"),
    "fps": ("10.0", "recorded frames per second"),
    "mcap": ("false", "also record raw topics as MCAP"),
    "joy_topic": ("/joy", "sensor_msgs/Joy topic (teleop:=joy)"),
    "leader_topic": ("/leader/joint_states", "leader arm joint states (teleop:=leader)"),
    "camera_ns": ("/camera", "camera driver namespace"),
    "sim": ("false", "also start sim_node (MuJoCo) and record its camera pose"),
    "use_sim_time": ("false", "use /clock"),
}


def _nodes(context):
    get = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    truthy = lambda name: get(name).lower() in ("1", "true", "yes")  # noqa: E731
    sim, sim_time = truthy("sim"), truthy("use_sim_time") or truthy("sim")
    share = P.share_dir()
    robot = P.robot_executor_params(get("robot"))
    teleop = dict(robot, mode=get("teleop"), use_sim_time=sim_time)
    teleop["joy.topic"] = get("joy_topic")
    teleop["leader.topic"] = get("leader_topic")
    rec_keys = ("base_frame", "use_tf", "camera_to_base.translation", "camera_to_base.rotation_xyzw",
                "robot_description_file", "ee_link", "joint_names", "gripper_joint_names",
                "gripper_open_position", "gripper_closed_position")
    recorder = {k: v for k, v in robot.items() if k in rec_keys}
    recorder.update(root=get("out"), instruction=get("task"), fps=float(get("fps")), mcap=truthy("mcap"),
                    camera_pose_topic="/sim/camera_pose" if sim else "", use_sim_time=sim_time)
    nodes = [
        Node(package="posevla_ros", executable="teleop_node", name="teleop_node", output="screen",
             emulate_tty=True, parameters=[str(share / "config" / "teleop.yaml"), teleop]),
        Node(package="posevla_ros", executable="recorder_node", name="recorder_node", output="screen",
             parameters=[str(share / "config" / "recorder.yaml"), recorder],
             remappings=P.camera_remappings(get("camera_ns"))),
    ]
    if sim:
        nodes.insert(0, Node(package="posevla_ros", executable="sim_node", name="sim_node", output="screen",
                             parameters=[{"robot": get("robot")}]))
    return nodes



def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [DeclareLaunchArgument(k, default_value=v, description=d) for k, (v, d) in ARGS.items()]
        + [OpaqueFunction(function=_nodes)])
