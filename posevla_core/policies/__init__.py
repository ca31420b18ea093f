"""Pose-VLA policies: one folder per architecture or head (small, paligemma, flow), each with
its configuration, modeling and processor, on the shared base class in ``base``."""
