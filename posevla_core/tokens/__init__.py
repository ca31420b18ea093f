"""Pose tokens: the fixed grammar a prediction is written in, and its constrained decoding."""
