"""Pose-VLA on a pretrained PaliGemma (transformers), with pose tokens added to its vocabulary."""
