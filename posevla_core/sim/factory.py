"""Which simulator backs sim_node: the ONE place the ``sim`` option is parsed.

    parse_sim("mujoco")          -> SimChoice("mujoco", None)       our Panda table-top scene (SimEnv)
    parse_sim("robosuite:Lift")  -> SimChoice("robosuite", "Lift")  a robosuite task (RobosuiteEnv), on the Panda
    parse_sim("robosuite:Lift:UR5e") -> SimChoice("robosuite", "Lift", "UR5e")   on another arm (PandaGripper)
    env = make_env("robosuite:Lift", width=224, height=224)
    env = make_env("robosuite:Lift", camera="frontview")   # robosuite's own camera (camera_choice)

Both envs offer the same interface (reset / step / trajectories / render / camera pose /
success), so the node and everything behind it stay the same. Parsing imports neither
mujoco nor robosuite: a typo fails in one line before anything heavy loads.
"""
from __future__ import annotations

from dataclasses import dataclass

MUJOCO = "mujoco"
ROBOSUITE = "robosuite"
#: the robot config of the simulated Panda (config/robots/sim_panda.yaml); with robosuite it stands
#: for the staged arm's own config (robot_config)
SIM_ROBOT = "sim_panda"
_MUJOCO_WORDS = ("", MUJOCO, "true")     # "true": what a boolean sim switch says


@dataclass(frozen=True)
class SimChoice:
    backend: str              # "mujoco" | "robosuite"
    task: str | None = None   # the robosuite task (e.g. "Lift")
    robot: str = "Panda"      # the robosuite arm (robosuite_env.ARMS), always with the PandaGripper

    def __str__(self) -> str:
        if self.task is None:
            return self.backend
        return f"{self.backend}:{self.task}" + ("" if self.robot == "Panda" else f":{self.robot}")


def parse_sim(text) -> SimChoice:
    """``mujoco`` (also empty / ``true``) or ``robosuite:<Task>[:<Arm>]``; ValueError in one line otherwise.
    A SimChoice is returned as it is (every function here takes either)."""
    if isinstance(text, SimChoice):
        return text
    # the sim modules pull in scipy (and MuJoCo / robosuite on use): loaded only when needed,
    # so the launch graphs and the CLI parse a sim choice without them
    from posevla_core.sim.robosuite.env import ARMS, TASKS, find_arm

    raw = str(text).strip()
    if raw.lower() in _MUJOCO_WORDS:
        return SimChoice(MUJOCO)
    backend, _, task = raw.partition(":")
    if backend.strip().lower() == ROBOSUITE:
        task, _, arm = task.partition(":")
        match = {t.lower(): t for t in TASKS}.get(task.strip().lower())
        if match is None:
            raise ValueError(f"sim {raw!r}: robosuite tasks staged here: "
                             f"{', '.join(f'robosuite:{t}' for t in TASKS)} (optionally :<arm>, one of {', '.join(ARMS)})")
        try:
            robot = find_arm(arm or "Panda").name
        except ValueError as e:
            raise ValueError(f"sim {raw!r}: {e}") from None
        return SimChoice(ROBOSUITE, match, robot)
    raise ValueError(f"sim {raw!r}: use mujoco | " + " | ".join(f"robosuite:{t}" for t in TASKS))


def check_task(sim, task) -> None:
    """ValueError (one line) unless ``sim`` can stage ``task`` (a family or an instruction)."""
    choice = parse_sim(sim)
    if choice.backend == ROBOSUITE:
        # the sim modules pull in scipy (and MuJoCo / robosuite on use): loaded only when needed,
        # so the launch graphs and the CLI parse a sim choice without them
        from posevla_core.sim.robosuite.env import TASKS, check_task as check_robosuite_task

        check_robosuite_task(TASKS[choice.task], task)
    else:
        # the sim modules pull in scipy (and MuJoCo / robosuite on use): loaded only when needed,
        # so the launch graphs and the CLI parse a sim choice without them
        from posevla_core.sim.tasks import parse_task

        parse_task(task)


def robot_config(sim, robot: str) -> str:
    """The robot config for ``sim``: robosuite's arms stand on a pedestal in its own arena, so
    the default ``sim_panda`` (our MuJoCo scene's Panda) becomes the config of the robosuite arm (``robosuite_panda``,
    ``robosuite_ur5e``, ... in config/robots/)."""
    choice = parse_sim(sim)
    if choice.backend == ROBOSUITE and robot == SIM_ROBOT:
        # the sim modules pull in scipy (and MuJoCo / robosuite on use): loaded only when needed,
        # so the launch graphs and the CLI parse a sim choice without them
        from posevla_core.sim.robosuite.env import ARMS

        return ARMS[choice.robot].config
    return robot


def with_robot(sim, robot: str) -> tuple[SimChoice, str]:
    """(simulator, robot config) of ``--sim`` and ``--robot`` together. With robosuite, ``--robot``
    may name a staged arm: ``--sim robosuite:Lift --robot ur5e`` is ``robosuite:Lift:UR5e`` with
    that arm's config; two different arms are refused in one line. Any other robot value is a
    robot config (robot_config)."""
    choice = parse_sim(sim)
    if choice.backend == ROBOSUITE and robot != SIM_ROBOT:
        # the sim modules pull in scipy (and MuJoCo / robosuite on use): loaded only when needed,
        # so the launch graphs and the CLI parse a sim choice without them
        from posevla_core.sim.robosuite.env import find_arm

        try:
            arm = find_arm(robot).name
        except ValueError:
            return choice, robot_config(choice, robot)
        if choice.robot not in ("Panda", arm):
            raise ValueError(f"--robot {robot} and --sim {choice} name two different arms")
        choice = SimChoice(ROBOSUITE, choice.task, arm)
        robot = SIM_ROBOT
    return choice, robot_config(choice, robot)


def camera_choice(sim, name: str | None = "", placement=None):
    """The ``camera`` make_env takes for ``sim``, from a camera ``name`` (``sim_camera`` /
    ``--camera``) and a placement (a sim/camera.py CameraPlacement of ``camera_pose`` / ``--fov``):
    the name, the placement, or None (the sim's default). Our scene has one camera
    (scene.CAMERA_NAME), placed by a placement only; robosuite renders a named camera as its
    model has it, so a name and a pose or fov together are refused. Cheap (no robosuite import):
    whether robosuite's model has the name is checked when the env is built (check_camera)."""
    # the sim modules pull in scipy (and MuJoCo / robosuite on use): loaded only when needed,
    # so the launch graphs and the CLI parse a sim choice without them
    from posevla_core.sim.mujoco.scene import CAMERA_NAME

    choice = parse_sim(sim)
    name = str(name or "").strip()
    if choice.backend != ROBOSUITE:
        if name not in ("", CAMERA_NAME):
            raise ValueError(f"camera {name!r}: our mujoco scene has one camera ({CAMERA_NAME!r}), placed with "
                             f"camera_pose / camera_fov_deg (--camera-pose / --fov); camera names are "
                             f"robosuite's (with a robosuite:<Task> sim)")
        return placement
    if name and placement is not None and (placement.pose is not None or placement.orbit is not None
                                           or placement.fov_deg is not None):
        raise ValueError(f"camera {name!r} with camera_pose / camera_fov_deg: a named robosuite camera is rendered "
                         f"as robosuite has it; give the name, or a pose (and fov), not both")
    return name or placement


def check_camera(sim, name: str | None = "", placement=None):
    """camera_choice, and for a robosuite camera name, that robosuite's model of the task has it
    (builds the model, about 2 s: for a command line before anything starts). ValueError in one
    line that lists the model's cameras."""
    camera = camera_choice(sim, name, placement)
    choice = parse_sim(sim)
    if choice.backend == ROBOSUITE and isinstance(camera, str):
        # the sim modules pull in scipy (and MuJoCo / robosuite on use): loaded only when needed,
        # so the launch graphs and the CLI parse a sim choice without them
        from posevla_core.sim.robosuite.env import PLACEMENT, camera_error, camera_names

        names = camera_names(choice.task, choice.robot)
        if camera != PLACEMENT and camera not in names:
            raise camera_error(choice.task, camera, names)
    return camera


def make_env(sim, width: int = 224, height: int = 224, default_task: str = "pick", camera_jitter: bool = True,
             randomize=None, camera=None):
    """The env for ``sim`` (a string or a SimChoice); ``randomize`` (a sim/randomize.py
    DomainRandomization) applies to our MuJoCo scene only. ``camera`` (camera_choice): None = the
    sim's default; a CameraPlacement (pose / fov in base, either sim); a camera name (robosuite's
    ``agentview``, ``frontview``, ...: rendered as robosuite has it; our scene: its one camera only)."""
    choice = parse_sim(sim)
    if isinstance(camera, str):
        camera = camera_choice(choice, camera)
    if choice.backend == ROBOSUITE:
        # the sim modules pull in scipy (and MuJoCo / robosuite on use): loaded only when needed,
        # so the launch graphs and the CLI parse a sim choice without them
        from posevla_core.sim.robosuite.env import RobosuiteEnv

        return RobosuiteEnv(choice.task, width=width, height=height, default_task=default_task, robot=choice.robot,
                            camera=camera)
    # the sim modules pull in scipy (and MuJoCo / robosuite on use): loaded only when needed,
    # so the launch graphs and the CLI parse a sim choice without them
    from posevla_core.sim.mujoco.env import SimEnv

    return SimEnv(width=width, height=height, default_task=default_task, camera_jitter=camera_jitter,
                  randomize=randomize, camera=camera or None)
