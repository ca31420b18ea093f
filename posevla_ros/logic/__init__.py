"""What the nodes decide, without ROS: inference, planning, safety, chunk execution, recording,
evaluation, teleoperation and reports. Plain Python on numpy, testable without rclpy."""
