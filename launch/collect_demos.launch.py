"""Demo collection: teleop_node + recorder_node + evaluator_node in collection mode
(+ sim_node with sim:=true) into a LeRobot dataset.

    ros2 launch posevla_ros collect_demos.launch.py sim:=false teleop:=joy task:="pick up the red cube"
    ros2 launch posevla_ros collect_demos.launch.py sim:=true teleop:=keyboard task:=pick episodes:=5

Per episode: the sim resets (sim:=true) or the operator gets the scene ready and says so
(teleop key n/Enter, or /evaluator/ready); recording runs until the sim's success predicate
or the operator's save (key e, /evaluator/success), a discard (key x, /evaluator/failure)
or the timeout; only saved episodes stay in the dataset. Teleop goes through the
executor's safety checks. The nodes come from posevla_ros.launching.graphs ("collect"), the
description `posevla collect [--sim]` runs in one process. Arguments: `--show-args`.
"""
from posevla_ros.launching.launch_description import describe


def generate_launch_description():
    return describe("collect")
