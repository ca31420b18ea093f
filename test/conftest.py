"""Shared fixtures and the rules that mark tests by tier.

Layout (see also test/README.md):

- ``unit/``: pure logic, mirrors the source tree (``unit/posevla_core/...``,
  ``unit/posevla_ros/...``): no rclpy context, no subprocess, no sim episodes. ``make test-fast``.
- ``ros/``: starts rclpy nodes or talks over DDS.
- ``integration/``: subprocesses, training runs, benchmarks, the simulator with its
  controller and experts (``integration/sim/``): several modules together.
- ``e2e/``: closed-loop sim episodes through the node graph, the CLI end to end, installs.
- ``helpers/``: shared helper modules, imported as ``test.helpers.<name>``.

Markers (registered in pyproject.toml), added by ``pytest_collection_modifyitems`` below:

- ``ros``: the test is under ``ros/``, or it uses the ``ros_context`` or ``node_process``
  fixture (whatever its folder).
- ``sim``: the test is under ``integration/sim/``, or its module uses the simulator (its
  source names ``SimEnv`` or ``robosuite``), or it is marked by hand.
- ``slow``: explicit only (``@pytest.mark.slow`` / ``pytestmark``); plain ``pytest`` skips
  them (``addopts = -m 'not slow'``), ``make test`` runs them.
- ``gpu``: explicit; such a test is skipped when torch sees no CUDA device.

Any marker can also be set by hand; the hook only adds. Select with ``-m``, e.g.
``pytest -m "not ros and not sim" test``.

Fixtures:

- A ROS_DOMAIN_ID unique to this pytest process (set at import, before any rclpy
  import, and inherited by node subprocesses), localhost-only discovery: parallel test runs
  on one machine do not see each other. Override with POSEVLA_TEST_DOMAIN_ID.
- ``ros_context``: a fresh rclpy Context per test (init + shutdown).
- ``spin_until(executor, predicate, timeout)``: spin until the predicate holds
  (``test.helpers.ros.spin_until``; plain waits use ``test.helpers.waiting.wait_until``).
- ``node_process(module, *ros_args)``: run ``python -m <module> --ros-args ...`` in a
  subprocess (same env, same domain), stopped with SIGINT (then SIGKILL) at teardown.
- ``tiny_model``: a random tiny PoseVLA (session scope).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from test.helpers.paths import REPO  # noqa: F401 - kept for tests that read conftest.REPO
from test.helpers.ros import NodeProcess, call_trigger, spin_until  # noqa: F401 - re-exported

import pytest

os.environ["ROS_DOMAIN_ID"] = os.environ.get("POSEVLA_TEST_DOMAIN_ID", str(10 + os.getpid() % 200))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TEST_ROOT = Path(__file__).resolve().parent
ROS_FIXTURES = {"ros_context", "node_process"}
SIM_WORDS = ("SimEnv", "robosuite")
_uses_sim: dict[Path, bool] = {}


def _tier_parts(item) -> tuple[str, ...]:
    try:
        return Path(str(item.path)).resolve().relative_to(TEST_ROOT).parts
    except ValueError:
        return ()


def _module_uses_sim(path: Path) -> bool:
    if path not in _uses_sim:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            text = ""
        _uses_sim[path] = any(w in text for w in SIM_WORDS)
    return _uses_sim[path]


def pytest_collection_modifyitems(config, items):
    """Add the ``ros`` / ``sim`` markers by folder and by use, and skip ``gpu`` tests without CUDA."""
    cuda = None
    for item in items:
        parts = _tier_parts(item)
        if parts[:1] == ("ros",) or ROS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.ros)
        if parts[:2] == ("integration", "sim") or _module_uses_sim(Path(str(item.path))):
            item.add_marker(pytest.mark.sim)
        if item.get_closest_marker("gpu") is not None:
            if cuda is None:
                import torch
                cuda = torch.cuda.is_available()
            if not cuda:
                item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))


@pytest.fixture(autouse=True)
def _torch_threads():
    """policy_node sets torch's CPU threads process-wide (its inference_threads parameter): each
    test leaves the count as it found it (torch is not imported here for tests without it)."""
    torch = sys.modules.get("torch")
    n = torch.get_num_threads() if torch is not None else None
    yield
    if n is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)


@pytest.fixture
def ros_context():
    import rclpy

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    yield ctx
    if ctx.ok():
        rclpy.shutdown(context=ctx)


@pytest.fixture
def node_process(tmp_path):
    started: list[NodeProcess] = []

    def start(module: str, *ros_args: str) -> NodeProcess:
        p = NodeProcess(module, list(ros_args), tmp_path / f"{module.rsplit('.', 1)[-1]}_{len(started)}.log")
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


@pytest.fixture(scope="session")
def tiny_model():
    from test.helpers.models import forbid_no_object

    import torch

    from posevla_core.policies.small.configuration import PoseVLAConfig
    from posevla_core.policies.small.modeling import PoseVLA

    torch.manual_seed(0)
    # the nodes under test get full answers (tests of the no-object path make the model answer it)
    model = forbid_no_object(PoseVLA(PoseVLAConfig.tiny()))
    model.eval()
    return model


@pytest.fixture(name="spin_until")
def spin_until_fixture():
    return spin_until
