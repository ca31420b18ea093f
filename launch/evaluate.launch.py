"""Evaluation over K episodes: policy_node + executor_node + recorder_node + evaluator_node
(+ sim_node with sim:=true). Every rollout is recorded (<out>/rollouts, LeRobot); results
in <out>/results.jsonl, summary.json, report.html.

    ros2 launch posevla_ros evaluate.launch.py sim:=true task:=pick episodes:=10 out:=runs/eval
    ros2 launch posevla_ros evaluate.launch.py sim:=false task:="pick up the red cube" episodes:=5
        # real arm: per episode the operator resets the scene, then calls
        #   ros2 service call /evaluator/ready std_srvs/srv/Trigger
        # and marks the outcome (/evaluator/success or /evaluator/failure); no mark = timeout

The nodes come from posevla_ros.launching.graphs ("evaluate"), the description `posevla evaluate
[--sim]` runs in one process. Arguments: `--show-args`.
"""
from posevla_ros.launching.launch_description import describe


def generate_launch_description():
    return describe("evaluate")
