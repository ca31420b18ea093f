"""ROS I/O shared by the nodes: message conversions, TF, time sync, topics and QoS, robot state
and description, controller backends and actions, rviz markers, MCAP."""
