"""Which simulator backs sim_node: the ONE place the ``sim`` option is parsed.

    parse_sim("mujoco")          -> SimChoice("mujoco", None)       our Panda table-top scene (SimEnv)
    parse_sim("robosuite:Lift")  -> SimChoice("robosuite", "Lift")  a robosuite task (RobosuiteEnv)
    env = make_env("robosuite:Lift", width=224, height=224)

Both envs offer the same interface (reset / step / trajectories / render / camera pose /
success), so the node and everything behind it stay the same. Parsing imports neither
mujoco nor robosuite: a typo fails in one line before anything heavy loads.
"""
from __future__ import annotations

from dataclasses import dataclass

MUJOCO = "mujoco"
ROBOSUITE = "robosuite"
_MUJOCO_WORDS = ("", MUJOCO, "true")     # "true": what a boolean sim switch says


@dataclass(frozen=True)
class SimChoice:
    backend: str              # "mujoco" | "robosuite"
    task: str | None = None   # the robosuite task (e.g. "Lift")

    def __str__(self) -> str:
        return self.backend if self.task is None else f"{self.backend}:{self.task}"


def parse_sim(text) -> SimChoice:
    """``mujoco`` (also empty / ``true``) or ``robosuite:<Task>``; ValueError in one line otherwise."""
    from posevla_core.sim.robosuite_env import TASKS

    raw = str(text).strip()
    if raw.lower() in _MUJOCO_WORDS:
        return SimChoice(MUJOCO)
    backend, _, task = raw.partition(":")
    if backend.strip().lower() == ROBOSUITE:
        task = task.strip()
        match = {t.lower(): t for t in TASKS}.get(task.lower())
        if match is None:
            raise ValueError(f"sim {raw!r}: robosuite tasks staged here: "
                             f"{', '.join(f'robosuite:{t}' for t in TASKS)}")
        return SimChoice(ROBOSUITE, match)
    raise ValueError(f"sim {raw!r}: use mujoco | " + " | ".join(f"robosuite:{t}" for t in TASKS))


def check_task(sim, task) -> None:
    """ValueError (one line) unless ``sim`` can stage ``task`` (a family or an instruction)."""
    choice = sim if isinstance(sim, SimChoice) else parse_sim(sim)
    if choice.backend == ROBOSUITE:
        from posevla_core.sim.robosuite_env import TASKS, check_task as check_robosuite_task

        check_robosuite_task(TASKS[choice.task], task)
    else:
        from posevla_core.sim.tasks import parse_task

        parse_task(task)


def robot_config(sim, robot: str) -> str:
    """The robot config for ``sim``: robosuite's Panda stands on a pedestal in its own arena, so
    the default ``panda`` becomes ``robosuite_panda`` (config/robots/robosuite_panda.yaml)."""
    choice = sim if isinstance(sim, SimChoice) else parse_sim(sim)
    return "robosuite_panda" if choice.backend == ROBOSUITE and robot == "panda" else robot


def make_env(sim, width: int = 224, height: int = 224, default_task: str = "pick", camera_jitter: bool = True):
    """The env for ``sim`` (a string or a SimChoice)."""
    choice = sim if isinstance(sim, SimChoice) else parse_sim(sim)
    if choice.backend == ROBOSUITE:
        from posevla_core.sim.robosuite_env import RobosuiteEnv

        return RobosuiteEnv(choice.task, width=width, height=height, default_task=default_task)
    from posevla_core.sim.env import SimEnv

    return SimEnv(width=width, height=height, default_task=default_task, camera_jitter=camera_jitter)
