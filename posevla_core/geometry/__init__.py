"""Geometry the policy and the robot share: rigid transforms (se3), kinematics on pinocchio,
joint-trajectory timing, action-chunk stitching, oriented 3D boxes (eval3d) and object symmetries."""
