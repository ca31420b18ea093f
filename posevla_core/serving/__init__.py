"""A Pose-VLA policy served over the network: the model on a GPU host, the robot's computer asks.

    GPU host:   posevla serve --checkpoint checkpoints/demo --port 8765
    robot PC:   policy = RemotePolicy("gpu-host:8765")
                pred = policy.predict(rgb, depth, K, "pick up the red cube")     # a types.Prediction

``RemotePolicy`` has the model contract callers of a local model use (``predict(rgb, depth, K,
instruction, views=None, state=None)``, ``needs_state``, ``max_cameras``, ``architecture``) and
returns the very ``Prediction`` the served model returned: same tokens, same poses, bit for bit.
So policy_node (its ``policy_server`` parameter) and plain Python scripts use it in place of
``policy.load_policy``. ``PolicyServer`` calls the real model's ``predict`` on the decoded
observation; nothing here imports ROS.

Modules: ``protocol`` (the wire format and its errors), ``server`` (``PolicyServer``, ``posevla
serve``), ``client`` (``RemotePolicy``).
"""
