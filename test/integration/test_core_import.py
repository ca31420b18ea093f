"""posevla_core must stay ROS-free: importing any of its modules never imports rclpy."""
import pkgutil
import subprocess
import sys
from test.helpers.paths import REPO as ROOT

import posevla_core


def all_core_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(posevla_core.__path__, "posevla_core."))


def test_no_core_module_imports_rclpy():
    mods = all_core_modules()
    assert "posevla_core.policies.small.modeling" in mods and "posevla_core.tokens.grammar" in mods
    code = ("import importlib, sys\n"
            f"for m in {mods!r}:\n"
            "    importlib.import_module(m)\n"
            "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('rclpy', 'rosidl_runtime_py', 'posevla_ros'))\n"
            "print('ROS:', bad)\n"
            "sys.exit(1 if bad else 0)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
