"""Pose-VLA core (ROS-free)."""
