"""Hand-eye calibration with a ChArUco board (OpenCV), without ROS: the board and its
detection, the AX = XB solver, and the arm poses a calibration run visits."""
