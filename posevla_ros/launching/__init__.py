"""Which nodes run together: the launch graphs (described once), their launch_ros form, and
the in-process runner for machines without `ros2 launch`."""
