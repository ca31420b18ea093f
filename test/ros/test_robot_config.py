"""Loud configuration: every bad robot config or node parameter of the kinds users make is
refused with ONE clear line (a ConfigError in-process; one stderr line and exit status 1
from the real node executable and the real CLI, no traceback), and good configs (the
Panda, the gripperless xArm6, an empty gripper list) load."""
from __future__ import annotations

import os
import subprocess
import sys
from test.helpers.paths import REPO
from test.helpers.waiting import poll

import pytest
import yaml

from posevla_ros import params
from posevla_ros.param_schema import ConfigError

PANDA = yaml.safe_load(params.robot_config_path("sim_panda").read_text())


def write_robot(tmp_path, **changes) -> str:
    """config/robots/sim_panda.yaml with ``changes`` (None deletes a key; 'a.b' edits a section)."""
    cfg = yaml.safe_load(yaml.safe_dump(PANDA))
    for key, value in changes.items():
        section, _, sub = key.partition("__")
        target = cfg[section] if sub else cfg
        name = sub or section
        if value is None:
            target.pop(name)
        else:
            target[name] = value
    path = tmp_path / "robot.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


BAD = {
    "mistyped key": ({"ee_lnk": "panda_hand"}, r"unknown key 'ee_lnk' \(did you mean 'ee_link'\?\)"),
    "number with a unit": ({"limits__max_joint_jump": "1.5 rad"}, r"max_joint_jump: expected a number, got '1.5 rad'"),
    "workspace as a string": ({"workspace__min": "0.1, -0.6, -0.05"}, r"workspace.min: expected a list"),
    "workspace min > max": ({"workspace__min": [0.1, 0.7, -0.05]}, r"workspace.min .* must be < workspace.max .*not on y"),
    "joint not in the URDF": ({"joint_names": [f"panda_joint{i}" for i in range(1, 7)] + ["panda_jiont7"]},
                              r"joint 'panda_jiont7' is not in .*panda.urdf \(did you mean 'panda_joint7'\?\)"),
    "ee_link not in the URDF": ({"ee_link": "panda_grasp_target"}, r"ee_link 'panda_grasp_target' is not a link"),
    "wrong list length": ({"camera_to_base__rotation_xyzw": [0.0, 0.0, 1.0]}, r"rotation_xyzw: expected 4 values, got 3"),
    "bool for a number": ({"limits__velocity_scale": True}, r"velocity_scale: expected a number, got True"),
    "out of range": ({"limits__velocity_scale": 3.0}, r"velocity_scale: 3.0 is outside \[0.01, 1.0\]"),
    "unknown section key": ({"limits__max_joint_jerk": 5.0}, r"unknown key 'limits.max_joint_jerk'"),
    "missing URDF": ({"robot_description_file": "nope/robot.urdf"}, r"robot_description_file .*not found"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_robot_config_is_one_clear_line(tmp_path, case):
    changes, pattern = BAD[case]
    with pytest.raises(ConfigError, match=pattern) as e:
        params.robot_executor_params(write_robot(tmp_path, **changes))
    assert "\n" not in str(e.value) and str(tmp_path) in str(e.value)


def test_good_robot_configs_load():
    panda = params.robot_executor_params("sim_panda")
    assert panda["ee_link"] == "panda_grasptarget" and panda["max_joint_jump"] == 1.5
    xarm = params.robot_executor_params("xarm6")
    assert xarm["gripper_joint_names"] == [] and xarm["joint_names"] == [f"joint{i}" for i in range(1, 7)]


def test_relative_urdf_is_relative_to_the_yaml(tmp_path):
    """A robot described only by its own YAML + URDF side by side (no code, no cache)."""
    from posevla_core.sim.mujoco.assets import resolve_robot_description

    urdf = resolve_robot_description("pybullet_data://xarm/xarm6_robot.urdf")
    (tmp_path / "arm").mkdir()
    (tmp_path / "arm" / "myarm.urdf").write_text(urdf.read_text())
    cfg = yaml.safe_load(params.robot_config_path("xarm6").read_text())
    cfg["robot_description_file"] = "myarm.urdf"
    (tmp_path / "arm" / "myarm.yaml").write_text(yaml.safe_dump(cfg))
    p = params.robot_executor_params(str(tmp_path / "arm" / "myarm.yaml"))
    assert p["robot_description_file"] == str(tmp_path / "arm" / "myarm.urdf")


def test_param_values_are_strict():
    spec = {s.name: s for s in params.EXECUTOR_PARAMS}
    assert params.typed_overrides(params.EXECUTOR_PARAMS, {"gripper_joint_names": [], "workspace.min": [0, 0, 0]}) == \
        {"gripper_joint_names": [], "workspace.min": [0.0, 0.0, 0.0]}
    for name, value, pattern in [("execution_mode", "completed", "not one of replace | complete"),
                                 ("joint_names", ["a", 2], "expected a string, got 2"),
                                 ("max_joint_jump", float("nan"), "expected a number"),
                                 ("use_tf", 1, "expected a bool")]:
        with pytest.raises(ConfigError, match=pattern):
            params.typed_overrides(params.EXECUTOR_PARAMS, {name: value})
    assert params.coerce("[0.1, 0.2, 0.3]", spec["workspace.min"].default) == [0.1, 0.2, 0.3]


def _run(args, **kw):
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=120, **kw)


def _one_line_error(r, pattern: str) -> None:
    import re

    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    assert len(lines) == 1 and re.search(pattern, lines[0]), r.stderr


def test_executor_executable_refuses_bad_parameters(tmp_path):
    """The real node executable: -p overrides and a params file with a mistyped key."""
    r = _run(["-m", "posevla_ros.nodes.executor_node", "--ros-args", "-p", "robot_description_file:=posevla://panda",
              "-p", "ee_link:=panda_hnad"])
    _one_line_error(r, r"ee_link 'panda_hnad' is not a link .*did you mean 'panda_hand'")
    r = _run(["-m", "posevla_ros.nodes.executor_node", "--ros-args", "-p", "workspace.min:=[0.1, 0.2]"])
    _one_line_error(r, r"workspace.min: expected 3 values, got 2")
    pf = tmp_path / "executor.yaml"
    pf.write_text("executor_node:\n  ros__parameters:\n    max_joint_jmp: 0.5\n")
    r = _run(["-m", "posevla_ros.nodes.executor_node", "--ros-args", "--params-file", str(pf)])
    _one_line_error(r, r"unknown parameter 'max_joint_jmp' \(did you mean 'max_joint_jump'\?\)")


def test_cli_refuses_bad_robot_config(tmp_path):
    r = _run(["-m", "posevla_ros.cli", "run", "policy", "--robot",
              write_robot(tmp_path, limits__max_joint_jump="1.5 rad")], cwd=tmp_path)
    _one_line_error(r, r"^posevla run: error: robot config .*max_joint_jump: expected a number, got '1.5 rad'")
    r = _run(["-m", "posevla_ros.cli", "run", "policy", "-p", "max_joint_jmp=1"], cwd=tmp_path)
    _one_line_error(r, r"unknown parameter 'max_joint_jmp' \(did you mean 'max_joint_jump'\?\)")


@pytest.mark.parametrize("node,file", [("policy_node", "policy.yaml"), ("executor_node", "executor.yaml")])
def test_shipped_node_params_files_are_valid(node, file):
    values = params.load_params_file(params.config_path(file), node)
    typed = params.typed_overrides(params.NODE_PARAMS[node], values, strict=True)
    assert typed and set(typed) == set(values)


def test_executor_executable_takes_an_empty_gripper_list(tmp_path, node_process):
    """`gripper_joint_names: []` from a params file (rcl hands rclpy an untyped value) and
    from -p: the executor starts without a gripper instead of an AttributeError traceback."""

    pf = tmp_path / "executor.yaml"
    pf.write_text("executor_node:\n  ros__parameters:\n    gripper_joint_names: []\n    use_tf: false\n")
    for args in (["--params-file", str(pf)], ["-p", "gripper_joint_names:=[]", "-p", "use_tf:=false"]):
        proc = node_process("posevla_ros.nodes.executor_node", *args)
        poll(lambda: not proc.alive() or "ready" in proc.output(), 120, 0.2)
        assert "gripper: none" in proc.output() and proc.alive(), proc.output()
        assert proc.stop() == 0 and "Traceback" not in proc.log_path.read_text()
