"""The flow-matching action head (pi0 / SmolVLA style) on any Pose-VLA backbone's prefix."""
