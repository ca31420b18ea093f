"""evaluator_node: K closed-loop episodes per task, success rate, report.

Per episode (``EvaluationLoop``, no ROS; the node supplies an ``EpisodeIO``):
  1. hold the robot (``/posevla/stop``; the policy is paused by ``/posevla/pause``),
  2. reset: ``/sim/reset`` (posevla_ros/srv/ResetEpisode: seed, task -> instruction); on a
     real arm (``reset_service: ''``) the operator is prompted on the terminal,
  3. publish the instruction on ``/posevla/instruction`` (again every
     ``instruction_period_s``), start recording (``/recorder/start``),
  4. release the robot (``/posevla/resume``, which also resumes the policy),
  5. poll success every 1/``success_poll_hz`` s: ``/sim/success`` (std_srvs/Trigger, success =
     predicate true) or, on a real arm (``success_service: ''``), the operator: key ``y`` /
     ``b`` in the terminal or the ``/evaluator/success`` / ``/evaluator/failure`` services,
  6. end at success or ``timeout_s`` (node clock: sim time in sim), hold the robot, save the
     rollout (``/recorder/stop``; every rollout is recorded, success or not).
Results: ``<out>/results.jsonl``, ``<out>/summary.json``, ``<out>/report.html`` with plots,
thumbnails and a GIF (``posevla_ros.report``), rollouts in ``<out>/rollouts`` (LeRobot).

``evaluate_main`` runs sim + policy + executor + recorder + evaluator in one process (what
``posevla evaluate`` and ``make demo`` use); launch/evaluate.launch.py is the ROS way.
"""
from __future__ import annotations

import json
import re
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from posevla_ros import params as P
from posevla_ros import report as R

TOPIC_INSTRUCTION = "/posevla/instruction"
TOPIC_RGB = "/camera/color/image_raw"
TOPIC_JOINT_STATES = "/joint_states"
TOPIC_RECORDER_STATUS = "/recorder/status"

_EXEC = {s.name: s for s in P.EXECUTOR_PARAMS}
EVALUATOR_PARAMS: list[P.ParamSpec] = [
    P.ParamSpec("task", "pick", "task family passed to the reset service (pick, put, ...)"),
    P.ParamSpec("instruction", "", "instruction when the reset does not give one (real arm)"),
    P.ParamSpec("episodes", 10, "number of episodes", 1, 100000),
    P.ParamSpec("seed", 1000, "seed of the first episode (episode i uses seed + i)", 0, 2**31 - 1),
    P.ParamSpec("timeout_s", 30.0, "episode timeout, node clock (sim time in sim)", 0.1, 1e5),
    P.ParamSpec("settle_s", 0.5, "wait after the reset before releasing the robot", 0.0, 60.0),
    P.ParamSpec("out", "runs/eval", "results directory (summary.json, results.jsonl, report.html)"),
    P.ParamSpec("checkpoint", "", "checkpoint evaluated (only written into the summary)"),
    P.ParamSpec("reset_service", "/sim/reset", "ResetEpisode service; '' = prompt the operator"),
    P.ParamSpec("success_service", "/sim/success", "Trigger success predicate; '' = operator decides"),
    P.ParamSpec("success_poll_hz", 2.0, "success checks per second", 0.1, 100.0),
    P.ParamSpec("instruction_period_s", 1.0, "re-publish the instruction this often", 0.05, 60.0),
    P.ParamSpec("record", True, "record every rollout through the recorder services"),
    P.ParamSpec("recorder_prefix", "/recorder", "recorder services <prefix>/start|stop|discard"),
    P.ParamSpec("stop_service", "/posevla/stop", "holds the robot between episodes ('' = none)"),
    P.ParamSpec("pause_service", "/posevla/pause", "pauses the policy between episodes ('' = none)"),
    P.ParamSpec("resume_service", "/posevla/resume", "releases the robot + policy ('' = none)"),
    P.ParamSpec("service_timeout_s", 30.0, "wall-clock wait for a service (and its discovery)", 0.1, 3600.0),
    P.ParamSpec("max_wall_factor", 30.0, "an episode also ends after timeout_s * this in wall time "
                "(guards against a stalled /clock)", 1.0, 1e4),
    P.ParamSpec("frame_period_s", 0.5, "report frames (GIF, thumbnails) every this many seconds", 0.01, 60.0),
    P.ParamSpec("keyboard", False, "operator keys in this terminal (y success, b failure, q quit)"),
    P.ParamSpec("keep_failures", True, "record failed rollouts too (false: discard them)"),
    P.ParamSpec("target_successes", 0, "> 0: stop after this many successes (episodes = max attempts)",
                0, 100000),
] + [_EXEC[n] for n in ("robot_description_file", "ee_link", "joint_names", "gripper_joint_names",
                        "gripper_open_position", "gripper_closed_position")]


# ---------------------------------------------------------------------------- core (no ROS)
class EpisodeIO(Protocol):
    """What the loop needs from the world. The node implements it with ROS services and
    topics; every method may raise RuntimeError with a reason (the episode then fails)."""

    def now(self) -> float: ...                                      # node clock, seconds
    def sleep(self, seconds: float) -> None: ...                     # wall clock
    def hold(self) -> None: ...                                      # stop robot + pause policy
    def release(self) -> None: ...                                   # resume robot + policy
    def reset(self, seed: int, task: str) -> str: ...                # -> instruction
    def send_instruction(self, text: str) -> None: ...
    def outcome(self) -> str | None: ...                             # 'success' | 'failure' | None
    def record_start(self, instruction: str) -> None: ...
    def record_stop(self) -> int | None: ...                         # dataset episode index
    def record_discard(self) -> None: ...
    def media_begin(self, episode: int) -> None: ...
    def media_end(self, episode: int) -> None: ...


@dataclass
class LoopConfig:
    task: str = "pick"
    episodes: int = 10
    seed: int = 1000
    timeout_s: float = 30.0
    settle_s: float = 0.5
    success_poll_hz: float = 2.0
    instruction_period_s: float = 1.0
    record: bool = True
    max_wall_factor: float = 30.0
    default_instruction: str = ""
    keep_failures: bool = True          # False: failed rollouts are discarded (demo collection)
    target_successes: int = 0           # > 0: stop once this many succeeded (episodes = max attempts)


class EvaluationLoop:
    """Runs the episodes (module docstring) and returns one record per episode."""

    def __init__(self, io: EpisodeIO, cfg: LoopConfig, log: Callable[[str], None] = print) -> None:
        self.io, self.cfg, self.log = io, cfg, log
        self.records: list[dict] = []
        self._abort = threading.Event()

    def abort(self) -> None:
        self._abort.set()

    def run(self) -> list[dict]:
        for i in range(self.cfg.episodes):
            if self._abort.is_set():
                break
            if self.cfg.target_successes and sum(r["success"] for r in self.records) >= self.cfg.target_successes:
                break
            rec = self.run_episode(i)
            self.records.append(rec)
            n, k = len(self.records), sum(r["success"] for r in self.records)
            self.log(f"episode {i}: {'SUCCESS' if rec['success'] else 'failure'} ({rec['reason']}, "
                     f"{rec['duration_s']:.1f} s); running success {k}/{n}")
        return self.records

    def run_episode(self, i: int) -> dict:
        cfg, io = self.cfg, self.io
        seed = cfg.seed + i
        rec: dict[str, Any] = {"episode": i, "seed": seed, "task": cfg.task, "instruction": "",
                               "success": False, "time_to_success_s": None, "duration_s": 0.0,
                               "timeout": False, "reason": "", "dataset_episode_index": None}
        recording = False
        try:
            io.hold()
            instruction = io.reset(seed, cfg.task) or cfg.default_instruction
            if not instruction.strip():
                raise RuntimeError("the reset gave no instruction and no default 'instruction' is set")
            rec["instruction"] = instruction
            io.send_instruction(instruction)
            if cfg.settle_s > 0:
                io.sleep(cfg.settle_s)
            io.media_begin(i)
            if cfg.record:
                io.record_start(instruction)
                recording = True
            io.release()
            t0, w0 = io.now(), time.monotonic()
            last_instr = t0
            poll = 1.0 / cfg.success_poll_hz
            while True:
                if self._abort.is_set():
                    rec["reason"] = "aborted"
                    break
                res = io.outcome()
                t = io.now()
                rec["duration_s"] = t - t0
                if res == "success":
                    rec.update(success=True, time_to_success_s=t - t0, reason="success")
                    break
                if res == "failure":
                    rec["reason"] = "marked failure"
                    break
                if t - t0 >= cfg.timeout_s or time.monotonic() - w0 >= cfg.timeout_s * cfg.max_wall_factor:
                    rec.update(timeout=True, reason="timeout")
                    break
                if t - last_instr >= cfg.instruction_period_s:
                    io.send_instruction(instruction)
                    last_instr = t
                io.sleep(poll)
        except Exception as e:  # noqa: BLE001 - an episode that cannot run is a failure with a reason
            rec["reason"] = f"error: {e}"
        finally:
            try:
                io.hold()
            except Exception as e:  # noqa: BLE001
                self.log(f"could not hold the robot after episode {i}: {e}")
            if recording:
                try:
                    if rec["success"] or cfg.keep_failures:
                        rec["dataset_episode_index"] = io.record_stop()
                    else:
                        io.record_discard()
                except Exception as e:  # noqa: BLE001
                    self.log(f"saving rollout {i} failed: {e}")
            try:
                io.media_end(i)
            except Exception:  # noqa: BLE001 - media are best effort
                pass
        return rec


# ---------------------------------------------------------------------------- media
class MediaCollector:
    """Per-episode report media from the ROS streams: frames every ``frame_period_s`` (stamp
    time, downscaled) and joint / end-effector / gripper traces. Thread safe."""

    def __init__(self, frame_period_s: float = 0.5, max_frames: int = 120, max_side: int = 160,
                 fk: Callable | None = None) -> None:
        self.frame_period_s, self.max_frames, self.max_side, self.fk = frame_period_s, max_frames, max_side, fk
        self.media: dict[int, R.EpisodeMedia] = {}
        self._lock = threading.Lock()
        self._current: int | None = None
        self._t0: float | None = None
        self._last_frame_t = -1e18
        self._last_joint_t = -1e18

    def begin(self, episode: int, t0: float) -> None:
        with self._lock:
            self.media[episode] = R.EpisodeMedia()
            self._current, self._t0 = episode, t0
            self._last_frame_t = self._last_joint_t = -1e18

    def end(self, episode: int) -> None:
        with self._lock:
            if self._current == episode:
                self._current = None

    def add_frame(self, t: float, rgb: np.ndarray) -> None:
        with self._lock:
            if self._current is None or t - self._last_frame_t < self.frame_period_s:
                return
            m = self.media[self._current]
            if len(m.frames) >= self.max_frames:
                return
            self._last_frame_t = t
        step = max(1, int(np.ceil(max(rgb.shape[:2]) / self.max_side)))
        small = np.ascontiguousarray(rgb[::step, ::step])
        with self._lock:
            m.frames.append(small)

    def add_joints(self, t: float, q: np.ndarray, gripper: float | None) -> None:
        with self._lock:
            if self._current is None or t - self._last_joint_t < 0.1 or self._t0 is None:
                return
            self._last_joint_t = t
            m = self.media[self._current]
            m.t.append(t - self._t0)
            m.joints.append(np.asarray(q, dtype=float).tolist())
            if gripper is not None:
                m.gripper.append(float(gripper))
            if self.fk is not None:
                m.ee_xyz.append(np.asarray(self.fk(q))[:3, 3].tolist())


def finish(out: str | Path, records: list[dict], task: str, media: dict | None = None, **extra) -> dict:
    """summary.json + results.jsonl + report.html (+ plots, GIF); returns the summary."""
    summary = R.summarize(records, task, **extra)
    R.write_report(out, summary, media or {})
    return summary


# ---------------------------------------------------------------------------- node
try:
    from rclpy.node import Node as _RosNode
except ImportError:  # pragma: no cover
    _RosNode = object


def _wait_future(fut, timeout: float, what: str):
    ev = threading.Event()
    fut.add_done_callback(lambda _f: ev.set())
    if not ev.wait(timeout):
        fut.cancel()
        raise RuntimeError(f"{what}: no answer within {timeout:.0f} s")
    return fut.result()


class EvaluatorNode(_RosNode):
    """See the module docstring. The episodes run on a thread started by ``start()`` (or at
    construction with ``autostart``); ``done`` is set when the report is written and
    ``summary`` holds it. The executor spins in another thread (any executor kind)."""

    def __init__(self, node_name: str = "evaluator_node", autostart: bool = True, fk=None,
                 on_hold: Callable[[], None] | None = None, on_release: Callable[[], None] | None = None,
                 **kwargs) -> None:
        from rclpy.callback_groups import ReentrantCallbackGroup
        from rclpy.qos import QoSProfile, qos_profile_sensor_data
        from sensor_msgs.msg import Image, JointState
        from std_msgs.msg import String
        from std_srvs.srv import Trigger

        from posevla_ros.srv import ResetEpisode

        super().__init__(node_name, **kwargs)
        P.declare_all(self, EVALUATOR_PARAMS)
        self.p = p = P.read_all(self, EVALUATOR_PARAMS)
        if fk is None:
            try:
                from posevla_core.kinematics import RobotKinematics

                fk = RobotKinematics(p["robot_description_file"], p["ee_link"], list(p["joint_names"])).fk
            except Exception as e:  # noqa: BLE001 - plots then show joints only
                self.get_logger().warn(f"no kinematics for end-effector plots: {e}")
        self.media = MediaCollector(p["frame_period_s"], fk=fk)
        self.summary: dict | None = None
        self.done = threading.Event()
        self._operator: str | None = None           # 'success' | 'failure' from keys / services
        self._recorder_instruction = ""
        self.on_hold, self.on_release = on_hold, on_release      # in-process drivers (scripted expert)
        self._g = ReentrantCallbackGroup()
        Tr = Trigger

        def client(srv_type, name):
            return self.create_client(srv_type, name, callback_group=self._g) if name else None

        self.cli_reset = client(ResetEpisode, p["reset_service"])
        self.cli_success = client(Tr, p["success_service"])
        self.cli_stop = client(Tr, p["stop_service"])
        self.cli_pause = client(Tr, p["pause_service"])
        self.cli_resume = client(Tr, p["resume_service"])
        pre = p["recorder_prefix"].rstrip("/")
        self.cli_rec = {k: client(Tr, f"{pre}/{k}") for k in ("start", "stop", "discard")} if p["record"] else {}
        self.pub_instruction = self.create_publisher(String, TOPIC_INSTRUCTION, QoSProfile(depth=10))
        self.create_subscription(Image, TOPIC_RGB, self._on_image, qos_profile_sensor_data)
        self.create_subscription(JointState, TOPIC_JOINT_STATES, self._on_joint_state, QoSProfile(depth=10))
        self.create_subscription(String, TOPIC_RECORDER_STATUS, self._on_recorder_status, QoSProfile(depth=10))
        self.create_service(Tr, "/evaluator/success", self._mark("success"))
        self.create_service(Tr, "/evaluator/failure", self._mark("failure"))
        cfg = LoopConfig(task=p["task"], episodes=p["episodes"], seed=p["seed"], timeout_s=p["timeout_s"],
                         settle_s=p["settle_s"], success_poll_hz=p["success_poll_hz"],
                         instruction_period_s=p["instruction_period_s"], record=p["record"],
                         max_wall_factor=p["max_wall_factor"], default_instruction=p["instruction"],
                         keep_failures=p["keep_failures"], target_successes=p["target_successes"])
        self.loop = EvaluationLoop(_RosEpisodeIO(self), cfg, log=self.get_logger().info)
        self._thread: threading.Thread | None = None
        self.get_logger().info(f"evaluator_node: {cfg.episodes} episodes of {cfg.task!r} from seed {cfg.seed}, "
                               f"timeout {cfg.timeout_s} s, reset via {p['reset_service'] or 'operator'}, "
                               f"success via {p['success_service'] or 'operator'}, out {p['out']}")
        if autostart:
            self.start()

    # ---- callbacks: hand data on
    def _on_image(self, msg) -> None:
        from posevla_ros import conversions as conv

        if self.media._current is None:
            return
        t = conv.stamp_to_sec(msg.header.stamp)
        if t - self.media._last_frame_t < self.media.frame_period_s:
            return
        try:
            self.media.add_frame(t, conv.image_to_rgb(msg))
        except ValueError:
            pass

    def _on_joint_state(self, msg) -> None:
        from posevla_ros import conversions as conv
        from posevla_ros.teleop import gripper_opening, joint_vector

        if self.media._current is None:
            return
        q = joint_vector(msg.name, msg.position, self.p["joint_names"])
        if q is not None:
            g = gripper_opening(msg.name, msg.position, self.p["gripper_joint_names"],
                                self.p["gripper_open_position"], self.p["gripper_closed_position"])
            self.media.add_joints(conv.stamp_to_sec(msg.header.stamp), q, g)

    def _on_recorder_status(self, msg) -> None:
        try:
            self._recorder_instruction = json.loads(msg.data).get("last_instruction", "")
        except ValueError:
            pass

    def _mark(self, what: str):
        def handler(_req, resp):
            self._operator = what
            resp.success, resp.message = True, f"episode marked {what}"
            return resp
        return handler

    # ---- run
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="evaluator", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            if self.p["keyboard"]:
                threading.Thread(target=self._keys, name="evaluator-keys", daemon=True).start()
            records = self.loop.run()
            self.summary = finish(self.p["out"], records, self.p["task"], self.media.media,
                                  checkpoint=self.p["checkpoint"], seed=self.p["seed"],
                                  timeout_s=self.p["timeout_s"])
            s = self.summary
            self.get_logger().info(f"evaluation done: {s['successes']}/{s['episodes']} "
                                   f"(rate {s['success_rate']:.2f}, Wilson 95% [{s['ci95'][0]:.2f}, "
                                   f"{s['ci95'][1]:.2f}]); report {Path(self.p['out']) / 'report.html'}")
        except Exception as e:  # noqa: BLE001
            self.get_logger().error(f"evaluation failed: {e!r}")
        finally:
            self.done.set()

    def _keys(self) -> None:
        from posevla_ros.teleop import KeyboardMapper, RawTerminal

        mapper = KeyboardMapper()
        with RawTerminal() as term:
            while not self.done.is_set():
                k = term.read_key(0.1)
                if not k:
                    continue
                ev = mapper.map(k).events
                if "success" in ev:
                    self._operator = "success"
                elif "failure" in ev:
                    self._operator = "failure"
                elif "quit" in ev:
                    self.loop.abort()

    def call(self, cli, request, what: str):
        timeout = self.p["service_timeout_s"]
        if not cli.wait_for_service(timeout_sec=timeout):
            raise RuntimeError(f"service {cli.srv_name} is not available ({what})")
        return _wait_future(cli.call_async(request), timeout, f"{cli.srv_name} ({what})")

    def destroy_node(self):
        self.loop.abort()
        if self._thread is not None:
            self._thread.join(timeout=30.0)
        return super().destroy_node()


class _RosEpisodeIO:
    """EpisodeIO over the node's service clients and publishers."""

    def __init__(self, node: EvaluatorNode) -> None:
        self.n = node

    def now(self) -> float:
        return self.n.get_clock().now().nanoseconds * 1e-9

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def _trigger(self, cli, what: str, must: bool = True) -> str:
        from std_srvs.srv import Trigger

        if cli is None:
            return ""
        r = self.n.call(cli, Trigger.Request(), what)
        if must and not r.success:
            raise RuntimeError(f"{cli.srv_name} failed: {r.message}")
        return r.message

    def hold(self) -> None:
        if self.n.on_hold is not None:
            self.n.on_hold()
        self._trigger(self.n.cli_stop, "hold the robot")
        self._trigger(self.n.cli_pause, "pause the policy")

    def release(self) -> None:
        end = time.monotonic() + self.n.p["service_timeout_s"]
        while self.now() <= 0.0:                 # sim time: wait for the first /clock
            if time.monotonic() > end:
                raise RuntimeError("the node clock is at 0: no /clock (use_sim_time without a sim?)")
            time.sleep(0.05)
        self._trigger(self.n.cli_resume, "resume robot + policy")
        if self.n.on_release is not None:
            self.n.on_release()

    def reset(self, seed: int, task: str) -> str:
        self.n._operator = None
        if self.n.cli_reset is None:
            return self._operator_reset(seed)
        from posevla_ros.srv import ResetEpisode

        r = self.n.call(self.n.cli_reset, ResetEpisode.Request(seed=int(seed), task=task), "reset")
        if not r.success:
            raise RuntimeError(f"reset failed: {r.message}")
        return r.instruction

    def _operator_reset(self, seed: int) -> str:
        print(f"\n[evaluator] reset the scene for episode seed {seed}, then press Enter ...", flush=True)
        sys.stdin.readline()
        return self.n.p["instruction"]

    def send_instruction(self, text: str) -> None:
        from std_msgs.msg import String

        self.n.pub_instruction.publish(String(data=text))

    def outcome(self) -> str | None:
        """Operator mark first; else the success predicate (false = undecided)."""
        if self.n._operator in ("success", "failure"):
            return self.n._operator
        if self.n.cli_success is None:
            return None
        from std_srvs.srv import Trigger

        ok = self.n.call(self.n.cli_success, Trigger.Request(), "success check").success
        return "success" if ok else None

    def record_start(self, instruction: str) -> None:
        end = time.monotonic() + 5.0   # let the recorder see the instruction first
        while self.n._recorder_instruction != instruction and time.monotonic() < end:
            self.send_instruction(instruction)
            time.sleep(0.1)
        self._trigger(self.n.cli_rec.get("start"), "start recording")

    def record_stop(self) -> int | None:
        msg = self._trigger(self.n.cli_rec.get("stop"), "save the rollout")
        m = re.search(r"episode (\d+)", msg)
        return int(m.group(1)) if m else None

    def record_discard(self) -> None:
        self._trigger(self.n.cli_rec.get("discard"), "discard the rollout")

    def media_begin(self, episode: int) -> None:
        self.n.media.begin(episode, self.now())

    def media_end(self, episode: int) -> None:
        self.n.media.end(episode)


# ---------------------------------------------------------------------------- in-process graph
def _params(values: dict[str, Any]):
    from rclpy.parameter import Parameter

    return [Parameter(k, value=v) for k, v in values.items()]


def node_overrides(specs: list[P.ParamSpec], yaml_name: str, node_name: str, robot: str,
                   overrides: dict) -> dict:
    """config/<yaml_name> for ``node_name`` + the robot's executor params it shares + overrides."""
    values: dict[str, Any] = {}
    path = P.config_path(yaml_name)
    if path.is_file():
        values.update(P.load_params_file(path, node_name))
    names = {s.name for s in specs}
    values.update({k: v for k, v in P.robot_executor_params(robot).items() if k in names})
    values.update(overrides)
    return P.typed_overrides(specs, values)


def evaluate_main(checkpoint: str | None, task: str, episodes: int, out: str, seed: int = 1000,
                  robot: str = "panda", use_depth: bool = True, timeout_s: float = 30.0,
                  model=None, record: bool = True, overrides: dict | None = None) -> dict:
    """`posevla evaluate`: sim + policy + executor + recorder + evaluator in this process.
    Returns the summary dict (also in <out>/summary.json). ``overrides``: {node: {param: value}}."""
    import rclpy

    from posevla_ros.recorder_node import RECORDER_PARAMS, RecorderNode
    from posevla_ros.runner import build_nodes, close_graph, spin_nodes

    out_dir = Path(out).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    ov = {k: dict(v) for k, v in (overrides or {}).items()}
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    built: list = []
    try:
        sim_ov = dict(ov.get("sim", {}), use_sim_time=False)
        pol_ov = dict(ov.get("policy", {}), use_depth=bool(use_depth), use_sim_time=True)
        from posevla_core.policy import head_of   # a flow head's chunks run stitched (chunk mode)

        mode = "chunk" if head_of(checkpoint) == "flow" else "complete"
        exe_ov = dict({"execution_mode": mode}, **ov.get("executor", {}), use_sim_time=True, use_tf=False,
                      camera_pose_topic="/sim/camera_pose")
        built += build_nodes(["sim"], robot, sim_ov, context=ctx)
        built += build_nodes(["policy"], robot, pol_ov, checkpoint=checkpoint, context=ctx, model=model)
        built += build_nodes(["executor"], robot, exe_ov, context=ctx)
        if record:
            rec = node_overrides(RECORDER_PARAMS, "recorder.yaml", "recorder_node", robot,
                                 dict(ov.get("recorder", {}), root=str(out_dir / "rollouts"), use_sim_time=True,
                                      use_depth=True))
            built.append(RecorderNode(context=ctx, parameter_overrides=_params(rec)))
        ev = node_overrides(EVALUATOR_PARAMS, "evaluator.yaml", "evaluator_node", robot,
                            dict(ov.get("evaluator", {}), task=task, episodes=int(episodes), seed=int(seed),
                                 out=str(out_dir), timeout_s=float(timeout_s), record=record,
                                 checkpoint=str(checkpoint or ""), use_sim_time=True))
        evaluator = EvaluatorNode(context=ctx, parameter_overrides=_params(ev))
        built.append(evaluator)
        spin_nodes(built, evaluator.done.is_set, ctx, num_threads=6)
        if evaluator.summary is None:
            raise RuntimeError("evaluation failed (see the evaluator_node log)")
        return evaluator.summary
    finally:
        close_graph(built, ctx)


def main(argv: list[str] | None = None) -> int:
    from posevla_ros.node_main import run_node

    return run_node(EvaluatorNode, argv, done=lambda n: n.done.is_set(),
                    exit_code=lambda n: 0 if n.summary is not None else 1)


if __name__ == "__main__":
    sys.exit(main())
