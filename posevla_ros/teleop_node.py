"""teleop_node: drive the arm by hand (keyboard, joystick / SpaceMouse, leader arm) or by the
sim's scripted expert, through the SAME safety checks and controller path as the policy.

Every command becomes a base-frame end-effector target (+ gripper) and goes through
``executor_node.ExecutorCore`` (workspace box, finite values, IK within joint limits, joint
jumps, FK match, timing) and the executor's backend (``backends.make_backend``:
JointTrajectory topic / FollowJointTrajectory action / MoveIt). A refused target moves
nothing, is logged, and the Cartesian target snaps back to the last accepted one.

Modes (param ``mode``):
- ``keyboard``: keys in this terminal (raw mode, see ``teleop.KEY_HELP``); one key = one step.
- ``joy``: sensor_msgs/Joy on ``joy.topic`` (axis / button mapping in config/teleop.yaml),
  velocities integrated at ``rate_hz``.
- ``leader``: a leader arm's sensor_msgs/JointState on ``leader.topic`` (remap it); the
  follower tracks FK(leader) at ``rate_hz``.
- ``scripted``: ``collect_main`` feeds the sim expert's waypoints (``send_targets``).
- ``none``: only the services / Python API.
Episode keys / buttons (start, stop, discard) call the recorder's Trigger services
``<recorder_prefix>/start|stop|discard``.

``collect_main`` (``posevla collect``) runs sim + teleop + recorder in one process.
"""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from posevla_core.types import Pose, Prediction, Waypoint
from posevla_ros import params as P
from posevla_ros import teleop as T

TOPIC_JOINT_STATES = "/joint_states"

TELEOP_PARAMS: list[P.ParamSpec] = [
    P.ParamSpec("mode", "keyboard", "keyboard | joy | leader | scripted | none", read_only=True),
    P.ParamSpec("rate_hz", 10.0, "command rate of joy / leader modes", 0.5, 200.0),
    P.ParamSpec("command_dt", 0.3, "min duration of one teleop motion segment (s)", 0.01, 10.0),
    P.ParamSpec("max_step_m", 0.05, "max target translation per command (m)", 0.001, 1.0),
    P.ParamSpec("max_step_rad", 0.3, "max target rotation per command (rad)", 0.001, 3.2),
    P.ParamSpec("resync_after_s", 1.0, "idle time after which the target snaps to the measured pose", 0.0, 1e4),
    P.ParamSpec("recorder_prefix", "/recorder", "recorder Trigger services <prefix>/start|stop|discard "
                "('' = no episode keys)"),
    P.ParamSpec("keyboard.linear_step", 0.01, "m per key press", 0.0001, 0.2),
    P.ParamSpec("keyboard.angular_step", 0.05, "rad per key press", 0.0001, 1.0),
    P.ParamSpec("joy.topic", "/joy", "sensor_msgs/Joy topic"),
    P.ParamSpec("joy.axes", [0, 1, 2, 3, 4, 5], "Joy axis index for [x, y, z, roll, pitch, yaw] (-1 unused)"),
    P.ParamSpec("joy.signs", [1.0, 1.0, 1.0, 1.0, 1.0, 1.0], "sign per command axis"),
    P.ParamSpec("joy.max_linear_speed", 0.1, "m/s at full deflection", 0.0, 2.0),
    P.ParamSpec("joy.max_angular_speed", 0.6, "rad/s at full deflection", 0.0, 6.0),
    P.ParamSpec("joy.deadzone", 0.1, "axis dead zone", 0.0, 0.99),
    P.ParamSpec("joy.button_gripper", 0, "button toggling the gripper (-1 none)", -1, 128),
    P.ParamSpec("joy.button_start", -1, "button starting an episode (-1 none)", -1, 128),
    P.ParamSpec("joy.button_stop", -1, "button saving the episode (-1 none)", -1, 128),
    P.ParamSpec("joy.button_discard", 1, "button discarding the episode (-1 none)", -1, 128),
    P.ParamSpec("leader.topic", "/leader/joint_states", "leader arm sensor_msgs/JointState topic"),
    P.ParamSpec("leader.joint_names", [""], "leader joints driving joint_names in order ([''] = same names)"),
    P.ParamSpec("leader.signs", [0.0], "sign per leader joint ([0.0] = all +1)"),
    P.ParamSpec("leader.offsets", [0.0], "offset per leader joint (rad) ([0.0] = none)"),
    P.ParamSpec("leader.gripper_joint", "", "leader joint driving the gripper ('' = keys/buttons)"),
    P.ParamSpec("leader.gripper_closed", 0.0, "leader gripper joint value when closed"),
    P.ParamSpec("leader.gripper_open", 0.04, "leader gripper joint value when open"),
] + [s for s in P.EXECUTOR_PARAMS if s.name not in ("policy_resume_service", "max_prediction_age_s")]


def _targets_prediction(targets: list[np.ndarray], grippers: list[float], dt: float) -> Prediction:
    """Base-frame targets as a Prediction, so ExecutorCore can check them with T_base_cam = I."""
    wps = [Waypoint(Pose.from_matrix(Tm), float(g)) for Tm, g in zip(targets, grippers)]
    return Prediction(category="teleop", box_uv=(0.5, 0.5),
                      object_pose=wps[0].pose if wps else Pose(np.zeros(3), np.array([0, 0, 0, 1.0])),
                      waypoints=wps, waypoint_dt=float(dt))


class TeleopCore:
    """ROS-free: commands -> checked plans. ``executor``: an ExecutorCore (same checks as the
    policy); ``send(plan)``: the backend's send. Not thread safe: one caller thread."""

    def __init__(self, executor, send: Callable, fk: Callable, workspace_min, workspace_max,
                 command_dt: float = 0.3, max_step_m: float = 0.05, max_step_rad: float = 0.3,
                 resync_after_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.executor, self.send, self.fk, self.clock = executor, send, fk, clock
        self.target = T.CartesianTarget(workspace_min, workspace_max, max_step_m, max_step_rad)
        self.command_dt, self.resync_after_s = float(command_dt), float(resync_after_s)
        self.q: np.ndarray | None = None
        self.sent = 0
        self.refused: list[str] = []
        self._last_cmd = -1e18

    def set_joint_state(self, q: np.ndarray) -> None:
        self.q = np.asarray(q, dtype=float)
        if not self.target.ready:
            self.target.sync(self.fk(self.q))

    def send_targets(self, targets: list[np.ndarray], grippers: list[float], dt: float | None = None):
        """Check + plan + send base-frame targets. Returns the ExecResult."""
        res = self.executor.process(_targets_prediction(targets, grippers, dt or self.command_dt),
                                    np.eye(4), self.q, 0.0)
        if res.ok:
            self.send(res.plan)
            self.sent += 1
        else:
            self.refused.append(res.reason)
        return res

    def apply(self, cmd: T.TeleopCommand):
        """A keyboard / joy command. Returns the ExecResult, or None when nothing was sent."""
        if self.q is None:
            self.refused.append("no joint state yet")
            return None
        now = self.clock()
        if now - self._last_cmd > self.resync_after_s or not self.target.ready:
            self.target.sync(self.fk(self.q))
        changed = cmd.moves
        if "gripper" in cmd.events:
            self.target.toggle_gripper()
            changed = True
        if not changed:
            return None
        self._last_cmd = now
        before = self.target.T.copy()
        Tn = self.target.step(cmd)
        res = self.send_targets([Tn], [self.target.gripper])
        if not res.ok:
            self.target.sync(before)
        return res

    def follow(self, q_leader: np.ndarray, gripper: float | None):
        """Leader-follower: the follower's end effector goes to FK(leader joints)."""
        if self.q is None:
            return None
        if gripper is not None:
            self.target.gripper = float(gripper)
        Tl = self.fk(np.asarray(q_leader, dtype=float))
        res = self.send_targets([Tl], [self.target.gripper])
        if res.ok:
            self.target.sync(Tl)
        return res


try:
    from rclpy.node import Node as _RosNode
except ImportError:  # pragma: no cover
    _RosNode = object


class TeleopNode(_RosNode):
    """See the module docstring. ``kinematics``: a prebuilt RobotKinematics (optional)."""

    def __init__(self, kinematics=None, node_name: str = "teleop_node", **kwargs) -> None:
        from rclpy.qos import QoSProfile
        from sensor_msgs.msg import JointState, Joy
        from std_srvs.srv import Trigger

        from posevla_ros import backends
        from posevla_ros.executor_node import ExecutorCore, load_kinematics
        from posevla_ros.runner import KeyedThrottle

        super().__init__(node_name, **kwargs)
        P.declare_all(self, TELEOP_PARAMS)
        self.p = p = P.read_all(self, TELEOP_PARAMS)
        p["max_prediction_age_s"] = 0.0          # teleop targets are made now
        self._log = KeyedThrottle(self.get_logger(), p["log_throttle_s"])
        kin = kinematics if kinematics is not None else load_kinematics(p)
        self.backend = backends.make_backend(self, p)
        self.core = TeleopCore(ExecutorCore(kin, p), self.backend.send, kin.fk, p["workspace.min"],
                               p["workspace.max"], p["command_dt"], p["max_step_m"], p["max_step_rad"],
                               p["resync_after_s"])
        self._lock = threading.Lock()             # guards self.core
        self._stop = threading.Event()
        self._joy: tuple[list, list] | None = None
        self._leader = None
        self.mode = p["mode"]
        if self.mode not in ("keyboard", "joy", "leader", "scripted", "none"):
            raise ValueError(f"unknown teleop mode {self.mode!r} (keyboard | joy | leader | scripted | none)")
        pre = p["recorder_prefix"].rstrip("/")
        self._rec = {k: self.create_client(Trigger, f"{pre}/{k}") for k in ("start", "stop", "discard")} \
            if p["recorder_prefix"] else {}
        self.on_event: Callable[[str], None] | None = None   # collect_main hooks episode keys here
        self.create_subscription(JointState, TOPIC_JOINT_STATES, self._on_joint_state, QoSProfile(depth=10))
        self._threads: list[threading.Thread] = []
        if self.mode == "keyboard":
            self.keys = T.KeyboardMapper(p["keyboard.linear_step"], p["keyboard.angular_step"])
            self._spawn(self._keyboard_loop, "teleop-keys")
            self.get_logger().info(T.KEY_HELP)
        elif self.mode == "joy":
            b = {"gripper": p["joy.button_gripper"], "start": p["joy.button_start"],
                 "stop": p["joy.button_stop"], "discard": p["joy.button_discard"]}
            self.joy = T.JoyMapper(T.JoyConfig(list(p["joy.axes"]), list(p["joy.signs"]), p["joy.max_linear_speed"],
                                               p["joy.max_angular_speed"], p["joy.deadzone"], b))
            self.create_subscription(Joy, p["joy.topic"], self._on_joy, QoSProfile(depth=10))
            self._spawn(self._rate_loop, "teleop-joy")
        elif self.mode == "leader":
            names = [n for n in p["leader.joint_names"] if n] or list(p["joint_names"])
            signs = p["leader.signs"] if any(p["leader.signs"]) else None
            offsets = p["leader.offsets"] if len(p["leader.offsets"]) == len(names) else None
            self.leader = T.LeaderMapper(T.LeaderConfig(names, signs, offsets, p["leader.gripper_joint"],
                                                        p["leader.gripper_closed"], p["leader.gripper_open"]))
            self.create_subscription(JointState, p["leader.topic"], self._on_leader, QoSProfile(depth=10))
            self._spawn(self._rate_loop, "teleop-leader")
        self.get_logger().info(f"teleop_node ready: mode={self.mode}, backend={self.backend.transport}")

    def _spawn(self, fn, name) -> None:
        t = threading.Thread(target=fn, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    # ---- callbacks: hand data on
    def _on_joint_state(self, msg) -> None:
        q = T.joint_vector(msg.name, msg.position, self.p["joint_names"])
        if q is not None:
            with self._lock:
                self.core.set_joint_state(q)

    def _on_joy(self, msg) -> None:
        self._joy = (list(msg.axes), list(msg.buttons))

    def _on_leader(self, msg) -> None:
        self._leader = (list(msg.name), list(msg.position))

    # ---- input threads
    def _keyboard_loop(self) -> None:
        with T.RawTerminal() as term:
            while not self._stop.is_set():
                k = term.read_key(0.1)
                if k:
                    self.handle_command(self.keys.map(k))

    def _rate_loop(self) -> None:
        period = 1.0 / self.p["rate_hz"]
        while not self._stop.wait(period):
            if self.mode == "joy" and self._joy is not None:
                axes, buttons = self._joy
                self.handle_command(self.joy.map(axes, buttons, period))
            elif self.mode == "leader" and self._leader is not None:
                q, g, why = self.leader.map(*self._leader)
                if q is None:
                    self._log("leader", why)
                    continue
                with self._lock:
                    res = self.core.follow(q, g)
                if res is not None and not res.ok:
                    self._log(res.key or "refused", f"no motion: {res.reason}")

    def handle_command(self, cmd: T.TeleopCommand):
        """Apply one command (any thread); episode events go to the recorder services."""
        with self._lock:
            res = self.core.apply(cmd)
        if res is not None and not res.ok:
            self._log(res.key or "refused", f"no motion: {res.reason}")
        for ev in cmd.events:
            if ev in ("start", "stop", "discard"):
                self._recorder(ev)
            if ev == "quit":
                self._stop.set()
            if self.on_event is not None:
                self.on_event(ev)
        return res

    def _recorder(self, what: str) -> None:
        from std_srvs.srv import Trigger

        cli = self._rec.get(what)
        if cli is None:
            return
        if not cli.service_is_ready():
            self.get_logger().warn(f"recorder service {cli.srv_name} is not available")
            return
        fut = cli.call_async(Trigger.Request())
        fut.add_done_callback(lambda f: self.get_logger().info(
            f"recorder {what}: {f.result().message if f.result() else f.exception()}"))

    # ---- Python API (scripted mode, tests)
    def send_targets(self, targets, grippers, dt: float | None = None):
        with self._lock:
            return self.core.send_targets(list(targets), list(grippers), dt)

    def joint_positions(self) -> np.ndarray | None:
        with self._lock:
            return None if self.core.q is None else self.core.q.copy()

    @property
    def quit_requested(self) -> bool:
        return self._stop.is_set()

    def destroy_node(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2.0)
        return super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    from posevla_ros.node_main import run_node

    return run_node(TeleopNode, argv, done=lambda n: n.quit_requested)


if __name__ == "__main__":
    sys.exit(main())


# ---------------------------------------------------------------------------- scripted expert
def interpolate_targets(T_from: np.ndarray, T_to: np.ndarray, max_step_m: float = 0.03,
                        max_step_rad: float = 0.2) -> list[np.ndarray]:
    """Targets from T_from (exclusive) to T_to (inclusive), straight line + slerp, each step
    at most ``max_step_m`` / ``max_step_rad`` (keeps IK continuous and joint jumps small)."""
    from scipy.spatial.transform import Rotation, Slerp

    dp = np.linalg.norm(T_to[:3, 3] - T_from[:3, 3])
    R = Rotation.from_matrix(np.stack([T_from[:3, :3], T_to[:3, :3]]))
    ang = (R[0].inv() * R[1]).magnitude()
    n = max(1, int(np.ceil(max(dp / max_step_m, ang / max_step_rad))))
    slerp = Slerp([0.0, 1.0], R)
    out = []
    for s in np.linspace(0.0, 1.0, n + 1)[1:]:
        Tm = np.eye(4)
        Tm[:3, :3] = slerp([s]).as_matrix()[0]
        Tm[:3, 3] = (1 - s) * T_from[:3, 3] + s * T_to[:3, 3]
        out.append(Tm)
    return out


class ExpertDriver:
    """Drives the arm with a scripted expert through ``TeleopNode.send_targets`` (the
    executor's checks). ``plan_fn() -> [(T_base_ee 4x4, gripper), ...]`` is called once per
    episode at ``release``; waypoints are interpolated and sent one segment at a time, the
    next one when the arm has (nearly) reached the previous or its time is up."""

    def __init__(self, teleop: "TeleopNode", plan_fn: Callable[[], list], fk: Callable,
                 settle_tol_rad: float = 0.02, gripper_wait_s: float = 0.8) -> None:
        self.teleop, self.plan_fn, self.fk = teleop, plan_fn, fk
        self.settle_tol_rad, self.gripper_wait_s = settle_tol_rad, gripper_wait_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []

    def release(self) -> None:
        self.hold()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="expert-driver", daemon=True)
        self._thread.start()

    def hold(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10.0)
        self._thread = None

    def _wait_reached(self, q_goal: np.ndarray, timeout_s: float) -> None:
        end = time.monotonic() + timeout_s
        while not self._stop.is_set() and time.monotonic() < end:
            q = self.teleop.joint_positions()
            if q is not None and np.max(np.abs(q - q_goal)) < self.settle_tol_rad:
                return
            time.sleep(0.02)

    def _run(self) -> None:
        try:
            waypoints = self.plan_fn()
        except Exception as e:  # noqa: BLE001
            self.errors.append(f"expert plan failed: {e!r}")
            return
        q = self.teleop.joint_positions()
        if q is None:
            self.errors.append("no joint state")
            return
        T_cur, g_cur = self.fk(q), None
        for T_goal, g in waypoints:
            if self._stop.is_set():
                return
            if g_cur is not None and abs(g - g_cur) > 0.5:     # gripper change: in place, then wait
                res = self.teleop.send_targets([T_cur], [g])
                if not res.ok:
                    self.errors.append(res.reason)
                    return
                self._stop.wait(self.gripper_wait_s)
            g_cur = g
            targets = interpolate_targets(T_cur, np.asarray(T_goal, dtype=float))
            res = self.teleop.send_targets(targets, [g] * len(targets), dt=0.1)
            if not res.ok:
                self.errors.append(res.reason)
                return
            self._wait_reached(res.plan.positions[-1], float(res.plan.times[-1]) * 3.0 + 2.0)
            T_cur = np.asarray(T_goal, dtype=float)


def make_expert_plan(sim_node) -> Callable[[], list]:
    """plan_fn for ExpertDriver from the in-process sim node's scripted expert
    (posevla_core.sim.expert): base-frame (T, gripper) waypoints for the current episode."""
    from posevla_core.sim import expert as E

    def plan():
        sim = getattr(sim_node, "sim", None) or getattr(sim_node, "env", None)
        with getattr(sim_node, "lock", threading.Lock()):
            wps = E.expert_waypoints(sim)
        out = []
        for w in wps:
            if hasattr(w, "pose"):
                out.append((w.pose.matrix(), float(w.gripper)))
            else:
                T_, g = w
                out.append((np.asarray(T_, dtype=float), float(g)))
        return out
    return plan


# ---------------------------------------------------------------------------- posevla collect
def collect_main(teleop: str, task: str, episodes: int, out: str, seed: int = 0, robot: str = "panda",
                 fps: float = 10.0, mcap: bool = False, timeout_s: float | None = None, sim: bool = True,
                 max_attempts: int | None = None, overrides: dict | None = None) -> dict:
    """`posevla collect`: record ``episodes`` demos into the LeRobot dataset ``out``.

    In sim (``sim=True``): sim + teleop + recorder + an evaluator loop in collection mode:
    each episode resets the sim (seed + i, ``task`` as the sim task), records, ends at the
    success predicate (or the operator: e = success, x = failure) or the timeout; failed
    episodes are discarded, so ``out`` holds ``episodes`` successful demos (at most
    ``max_attempts`` tries). ``teleop='scripted'``: the sim expert drives.
    On a real arm (``sim=False``): teleop + recorder; the operator starts / saves / discards
    episodes with the keys (or the /recorder/* services); ``task`` is the instruction.
    Returns a summary dict (also in <out>/collect_summary.json)."""
    import json

    import rclpy

    from posevla_ros.evaluator_node import EVALUATOR_PARAMS, EvaluatorNode, _params, node_overrides
    from posevla_ros.recorder_node import RECORDER_PARAMS, RecorderNode
    from posevla_ros.runner import build_nodes, close_graph, spin_nodes

    if teleop not in ("keyboard", "joy", "leader", "scripted"):
        raise ValueError(f"unknown teleop {teleop!r} (keyboard | joy | leader | scripted)")
    if teleop == "scripted" and not sim:
        raise ValueError("teleop 'scripted' needs the sim (its expert reads the sim state)")
    out_dir = Path(out).expanduser()
    ov = {k: dict(v) for k, v in (overrides or {}).items()}
    timeout_s = float(timeout_s if timeout_s is not None else (30.0 if teleop == "scripted" else 300.0))
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    built: list = []
    try:
        sim_node = None
        if sim:
            sim_node = build_nodes(["sim"], robot, dict(ov.get("sim", {})), context=ctx)[0]
            built.append(sim_node)
        t_ov = dict(ov.get("teleop", {}), mode="none" if teleop == "scripted" else teleop,
                    use_sim_time=sim, recorder_prefix="" if sim else "/recorder")
        tele = TeleopNode(context=ctx, parameter_overrides=_params(
            node_overrides(TELEOP_PARAMS, "teleop.yaml", "teleop_node", robot, t_ov)))
        built.append(tele)
        r_ov = dict(ov.get("recorder", {}), root=str(out_dir), fps=float(fps), mcap=bool(mcap), use_sim_time=sim,
                    camera_pose_topic="/sim/camera_pose" if sim else "")
        if not sim:
            r_ov["instruction"] = task
        rec = RecorderNode(context=ctx, parameter_overrides=_params(
            node_overrides(RECORDER_PARAMS, "recorder.yaml", "recorder_node", robot, r_ov)))
        built.append(rec)
        if not sim:
            tele.get_logger().info(f"collecting {episodes} episodes of {task!r}: n/Enter start, e save, "
                                   f"x discard, q quit")
            spin_nodes(built, lambda: tele.quit_requested or len(rec.core.saved) >= episodes, ctx, num_threads=6)
            summary = {"episodes_saved": len(rec.core.saved), "discarded": rec.core.discarded,
                       "task": task, "out": str(out_dir)}
        else:
            driver = None
            if teleop == "scripted":
                driver = ExpertDriver(tele, make_expert_plan(sim_node), tele.core.fk)
            e_ov = dict(ov.get("evaluator", {}), task=task, episodes=int(max_attempts or 3 * episodes + 2),
                        target_successes=int(episodes), seed=int(seed), timeout_s=timeout_s,
                        out=str(out_dir / "collect_log"), keep_failures=False, record=True,
                        stop_service="", pause_service="", resume_service="", use_sim_time=True)
            ev = EvaluatorNode(context=ctx, parameter_overrides=_params(
                node_overrides(EVALUATOR_PARAMS, "evaluator.yaml", "evaluator_node", robot, e_ov)),
                on_hold=driver.hold if driver else None, on_release=driver.release if driver else None)
            built.append(ev)

            def on_event(e: str) -> None:
                if e == "stop":
                    ev._operator = "success"
                elif e == "discard":
                    ev._operator = "failure"
                elif e == "quit":
                    ev.loop.abort()
            tele.on_event = on_event
            spin_nodes(built, ev.done.is_set, ctx, num_threads=6)
            s = ev.summary or {"successes": 0, "episodes": 0, "per_episode": []}
            summary = {"episodes_saved": len(rec.core.saved), "attempts": s["episodes"],
                       "successes": s["successes"], "task": task, "seed": seed, "out": str(out_dir),
                       "per_episode": s["per_episode"],
                       "expert_errors": list(driver.errors) if driver else []}
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "collect_summary.json").write_text(json.dumps(summary, indent=2, default=str))
        return summary
    finally:
        close_graph(built, ctx)
