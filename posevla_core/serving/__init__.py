"""A policy served over the network: the model on a GPU host, the robot's computer asks."""
