"""The small Pose-VLA model: the CPU model of the sim demo and the shipped checkpoints."""
