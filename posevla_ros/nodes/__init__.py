"""The ROS 2 nodes, one file each: thin adapters between topics and posevla_ros.logic."""
