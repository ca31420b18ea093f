"""Closed-loop sim demo, unattended: sim_node (MuJoCo Panda + RGB-D camera + controllers)
stages one episode and publishes its instruction on /posevla/instruction (reliable,
transient local, so a policy that starts later still gets it); the same policy_node and
executor_node as on a real arm act on it, on sim time.

    ros2 launch posevla_ros sim_demo.launch.py task:="pick up the red cube" rviz:=true

The nodes come from posevla_ros.launching.graphs ("sim_demo"), the description `posevla run sim-demo`
runs in one process. Arguments: `ros2 launch posevla_ros sim_demo.launch.py --show-args`.
"""
from posevla_ros.launching.launch_description import describe


def generate_launch_description():
    return describe("sim_demo")
