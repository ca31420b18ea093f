"""One camera frame -> one prediction, without a node: what policy_node's worker thread runs.

``PolicyCore`` decodes a ``RawFrame`` (the synced sensor_msgs of every camera), checks it
(encodings, depth aligned to color, age, an instruction) and runs the model; an unusable
frame is one ``FrameError`` whose ``key`` groups the node's log throttle. ``load_model``
resolves a ``checkpoint`` parameter (empty = the shipped one) and loads any backbone, or
connects to a ``policy_server`` (posevla_core.serving.server) whose model answers the same way; such a
server down, slow or restarting is a ``FrameError`` ("policy_server"): no prediction.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from posevla_core.paths import resolve_checkpoint
from posevla_core.policies.geometry_prior import depth_support
from posevla_ros.ros_io import conversions as conv
from posevla_ros.ros_io.topics import TOPIC_INSTRUCTION


class FrameError(Exception):
    """A frame that cannot be used (bad encoding, size mismatch, stale, no instruction).
    ``key`` groups the log throttle."""

    def __init__(self, key: str, msg: str) -> None:
        super().__init__(msg)
        self.key = key


@dataclass
class RawFrame:
    rgb: Any            # sensor_msgs/Image
    info: Any           # sensor_msgs/CameraInfo
    depth: Any = None   # sensor_msgs/Image or None
    views: list["RawFrame"] = field(default_factory=list)   # the other cameras, in camera_namespaces order


@dataclass
class PolicyResult:
    prediction: Any     # posevla_core.poses.Prediction
    header: Any         # the rgb image's header
    instruction: str
    inference_ms: float


class PolicyCore:
    """ROS-free: decode one raw frame, check it, run the model. Raises FrameError on bad or
    stale input; model exceptions propagate (the node logs them and keeps running)."""

    def __init__(self, model, use_depth: bool = True, max_image_age_s: float = 1.0,
                 min_object_depth_support: float = 0.0) -> None:
        self.model, self.use_depth, self.max_image_age_s = model, use_depth, max_image_age_s
        self.min_object_depth_support = min_object_depth_support

    def decode(self, frame: RawFrame):
        try:
            rgb = conv.image_to_rgb(frame.rgb)
        except Exception as e:  # noqa: BLE001 - any malformed buffer
            raise FrameError("bad_rgb", f"unusable color image: {e}") from e
        try:
            K = conv.camera_info_to_K(frame.info, rgb.shape[1], rgb.shape[0])
        except Exception as e:  # noqa: BLE001
            raise FrameError("bad_camera_info", f"unusable CameraInfo: {e}") from e
        depth = None
        if self.use_depth:
            if frame.depth is None:
                raise FrameError("no_depth", "use_depth is true but no depth image came with the frame")
            try:
                depth = conv.image_to_depth(frame.depth)
            except Exception as e:  # noqa: BLE001
                raise FrameError("bad_depth", f"unusable depth image: {e}") from e
            if depth.shape != rgb.shape[:2]:
                raise FrameError("bad_depth", f"depth {depth.shape} is not aligned to color {rgb.shape[:2]}")
        return rgb, depth, K

    def check_age(self, frame: RawFrame, now_s: float) -> None:
        age = now_s - conv.stamp_to_sec(frame.rgb.header.stamp)
        if self.max_image_age_s > 0 and age > self.max_image_age_s:
            raise FrameError("stale", f"dropping a frame {age:.3f} s old (max_image_age_s "
                                      f"{self.max_image_age_s})")

    @property
    def needs_state(self) -> bool:
        """Whether the model reads the robot's state (a flow expert with proprioception)."""
        return bool(getattr(self.model, "needs_state", False))

    def run(self, frame: RawFrame, instruction: str, now_s: float, state: dict | None = None,
            state_reason: str = "") -> PolicyResult:
        """``state``: the robot at the image (``robot_state.RobotStateAt.at``) for a model that
        ``needs_state``; without one such a model does not predict (``state_reason`` says why)."""
        if not instruction.strip():
            raise FrameError("no_instruction", f"no instruction yet (publish std_msgs/String on "
                                               f"{TOPIC_INSTRUCTION})")
        self.check_age(frame, now_s)
        rgb, depth, K = self.decode(frame)
        views = []
        for i, v in enumerate(frame.views, start=2):
            try:
                vr, vd, vK = self.decode(v)
            except FrameError as e:
                raise FrameError(e.key, f"camera {i}: {e}") from e
            views.append({"rgb": vr, "depth": vd, "K": vK})
        kw = {"views": views} if views else {}
        if self.needs_state:
            if state is None:
                raise FrameError("no_state", f"no robot state at the image, not predicting: "
                                             f"{state_reason or 'none given'}")
            kw["state"] = state
        t0 = time.perf_counter()
        try:
            pred = self.model.predict(rgb, depth, K, instruction, **kw)
        except ConnectionError as e:    # a served model (serving.PolicyServerError): down, slow, restarting
            raise FrameError("policy_server", f"{e}; no prediction for this frame (reconnecting on the "
                                              f"next one)") from e
        ms = (time.perf_counter() - t0) * 1000.0
        if not getattr(pred, "valid", True):
            raise FrameError("invalid_prediction", f"the model produced no usable prediction "
                                                   f"(clipped: {getattr(pred, 'clipped', [])})")
        self.check_object_depth(pred, depth)
        return PolicyResult(pred, frame.rgb.header, instruction, ms)

    def check_object_depth(self, pred, depth) -> None:
        """A grounded object with (almost) no depth reading at its 2D box center is refused: the
        models place it along the viewing ray from that depth, and without it they answer
        decimeters off without refusing (``geometry.depth_support``). Chunks (no grounded
        object) and RGB-only frames pass."""
        if depth is None or self.min_object_depth_support <= 0 or not getattr(pred, "found", False):
            return
        uv = np.asarray(pred.box_uv, dtype=float)
        if not np.all(np.isfinite(uv)):
            return
        H, W = depth.shape[:2]
        support = depth_support(depth, (uv[0] * W - 0.5, uv[1] * H - 0.5))
        if support < self.min_object_depth_support:
            raise FrameError("no_object_depth", f"the depth image has almost no reading at the object the model "
                                                f"grounded ({support:.0%} of the pixels around its box center, "
                                                f"min_object_depth_support {self.min_object_depth_support:g}): "
                                                f"its distance would be a guess; not moving")


def load_model(checkpoint: str, device: str, policy_server: str = "", timeout_s: float = 1.0,
               wait_s: float = 30.0, logger=None, stop=None, decoding: str = "static", threads: int = 0):
    """The model a policy_node runs: ``checkpoint`` loaded here, or with ``policy_server``
    ('host:port') a ``posevla_core.serving.client.RemotePolicy`` of that server (``checkpoint`` and
    ``device`` are then the server's business). The remote one is returned once the server's
    handshake said what its model needs (robot state, cameras): the node sets itself up for
    that at start. It waits ``wait_s`` at most for the server (``stop()`` true: KeyboardInterrupt),
    then a ValueError, one line; ``logger`` (rclpy's) says what it waits for and each connection.
    ``decoding``: a local checkpoint's ``set_decoding`` (the small model's token decoding or a flow
    head's Euler steps; "static-compile" compiles here, before the first frame, and a failure is a
    warning and the uncompiled step). ``threads``: torch's CPU threads for a local checkpoint, set
    before it loads (``posevla_core.policies.base.set_inference_threads``; 0 = half the CPUs)."""
    if policy_server.strip():
        # websockets / msgpack: only a policy_server client needs them
        from posevla_core.serving.client import RemotePolicy
        from posevla_core.serving.protocol import PolicyServerError

        def on_connect(meta: dict) -> None:
            if logger is None:
                return
            msg = (f"policy server {policy_server}: connected (connection {remote.connects}): serves "
                   f"{meta.get('checkpoint') or 'a model'} ({meta.get('architecture')}, {meta.get('head')} head, "
                   f"needs_state={meta.get('needs_state')}, max_cameras={meta.get('max_cameras')}, {meta.get('device')})")
            if remote.connects == 1:
                logger.info(msg)
            else:       # a server that times out every frame reconnects every frame: not a line each time
                logger.info(msg, throttle_duration_sec=10.0)

        tries = []

        def on_retry(reason: str) -> None:
            tries.append(reason)
            if logger is not None and len(tries) % 5 == 1:    # the first, then every 5th try
                logger.warn(f"waiting for the policy server (up to {wait_s:g} s): {reason}")

        remote = RemotePolicy(policy_server, timeout_s, on_connect=on_connect)
        try:
            remote.wait_ready(wait_s, on_retry, stop)
        except PolicyServerError as e:
            raise ValueError(f"policy_server: {e}") from None
        return remote
    # torch: only a local model needs it (a policy_server client does not)
    from posevla_core.policies.base import set_inference_threads, use_decoding
    from posevla_core.policies.factory import load_policy

    n = set_inference_threads(threads)
    if logger is not None:
        logger.info(f"inference_threads: torch uses {n} CPU thread(s)")
    model = load_policy(str(resolve_checkpoint(checkpoint)), device=device)
    t = time.perf_counter()
    fallback = use_decoding(model, decoding)
    if logger is not None and fallback:
        logger.warn(fallback)
    elif logger is not None and decoding == "static-compile" and hasattr(model, "set_decoding"):
        logger.info(f"decoding: static-compile, compiled in {time.perf_counter() - t:.1f} s")
    return model
