"""Pose-VLA on a robot: policy_node (camera + instruction -> PosePrediction) + executor_node
(prediction -> checked base-frame trajectory for the arm's controller).

    ros2 launch posevla_ros policy.launch.py robot:=sim_panda camera_ns:=/camera
    ros2 topic pub --once /posevla/instruction std_msgs/String "data: 'pick up the red cube'"

The nodes, parameter files, values and remappings come from posevla_ros.launching.graphs ("policy"),
the same description `posevla run policy --robot sim_panda` runs in one process.
Arguments: `ros2 launch posevla_ros policy.launch.py --show-args`.
"""
from posevla_ros.launching.launch_description import describe


def generate_launch_description():
    return describe("policy")
