# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both bootstrap .venv first through `make setup`, which is idempotent and rebuilds only
# what changed (stamp files in .venv/).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export MUJOCO_GL ?= osmesa
export PYOPENGL_PLATFORM ?= osmesa
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PYTHONDONTWRITEBYTECODE := 1

PKG_SOURCES := $(shell find posevla_ros posevla_core launch config msg srv -type f \
                 -not -name '*.pyc' -not -path '*/__pycache__/*' 2>/dev/null) \
               CMakeLists.txt package.xml scripts/build_msgs.sh scripts/cmake_package.sh

.PHONY: setup demo test test-fast bench bench-robosuite bench-robosuite-agentview bench-gpu bench-generalization checkpoint checkpoint-wide clean help
help:
	@echo "make demo        closed-loop MuJoCo demo with the shipped checkpoint"
	@echo "make test        the whole test suite"
	@echo "make test-fast   the unit tier (test/unit: pure logic, well under a minute)"
	@echo "make bench       benchmarks (JSON + table in bench_results/)"
	@echo "make bench-robosuite  robosuite Lift / PickPlaceCan: train on Panda demos, evaluate on 4 arms (~1.5 h)"
	@echo "make bench-robosuite-agentview  the same at robosuite's own agentview, fine-tuned from checkpoints/wide"
	@echo "make bench-gpu   PaliGemma-3B-shaped model on one CUDA GPU: LoRA steps, latency, memory"
	@echo "make bench-generalization  shipped checkpoint across cameras, lenses, light, tables, depth noise, clutter (docs/generalization/)"
	@echo "make checkpoint  retrain the shipped checkpoint from generated sim data"
	@echo "make checkpoint-wide  train checkpoints/wide: randomized cameras, lights, tables, depth faults"

setup: $(VENV)/.stamp-pkg $(VENV)/.stamp-cli $(VENV)/.stamp-test-interfaces

$(VENV)/.stamp-venv:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip==25.3" "setuptools==80.9.0" "wheel==0.45.1"
	touch $@

$(VENV)/.stamp-apt: requirements/apt.txt scripts/apt_deps.sh | $(VENV)/.stamp-venv
	scripts/apt_deps.sh
	touch $@

$(VENV)/.stamp-req: requirements/venv.txt requirements/robosuite.txt $(VENV)/.stamp-venv $(VENV)/.stamp-apt
	$(PY) -m pip install -q -r requirements/venv.txt 2>&1 | grep -v "is ignored: it is neither" || true
	$(PY) -m pip install -q --no-deps -r requirements/robosuite.txt 2>&1 | grep -v "is ignored: it is neither" || true
	$(PY) -m pip check >/dev/null 2>&1 || $(PY) -m pip check | grep -v -i -E "torchvision|^robosuite [0-9.]+ requires" || true
	$(PY) -c "import torch, rclpy, pinocchio, mujoco, transformers" 
	touch $@

# The real lerobot package lives in its own venv (torch conflict, see requirements/lerobot.txt);
# tests use it to load the datasets we write. `make test` builds it; `make test-fast` does not.
LEROBOT_VENV := .venv-lerobot
$(LEROBOT_VENV)/.stamp: requirements/lerobot.txt
	$(PYTHON) -m venv $(LEROBOT_VENV)
	$(LEROBOT_VENV)/bin/pip install -q -r requirements/lerobot.txt 2>&1 | grep -v "is ignored: it is neither" || true
	$(LEROBOT_VENV)/bin/pip install -q --no-deps lerobot==0.4.4 2>&1 | grep -v "is ignored: it is neither" || true
	$(LEROBOT_VENV)/bin/python -c "from lerobot.datasets.lerobot_dataset import LeRobotDataset"
	touch $@

$(VENV)/.stamp-pkg: $(VENV)/.stamp-req $(PKG_SOURCES)
	scripts/build_msgs.sh $(VENV)
	touch $@

# Test-only interface packages without a PyPI wheel (control_msgs: the executor's
# FollowJointTrajectory / GripperCommand clients are tested against real action servers).
$(VENV)/.stamp-test-interfaces: $(VENV)/.stamp-req scripts/build_test_interfaces.sh scripts/cmake_package.sh \
                                $(shell find test/interfaces -type f 2>/dev/null)
	scripts/build_test_interfaces.sh $(VENV)
	touch $@

# The `posevla` console script, and this checkout as the posevla_ros / posevla_core that the
# venv imports from any directory (editable: edits are live). -I: the messages' CMake
# install registers an egg-info of the same name, which pip would otherwise "uninstall"
# by deleting the whole posevla_ros directory, generated messages included.
$(VENV)/.stamp-cli: setup.py setup.cfg $(VENV)/.stamp-pkg
	$(PY) -m pip install -q --no-deps --no-build-isolation -I -e . 2>&1 | grep -v "is ignored: it is neither" || true
	test -x $(VENV)/bin/posevla
	cd / && $(CURDIR)/$(VENV)/bin/posevla --help >/dev/null
	touch $@

demo: setup
	$(PY) -m posevla_ros.cli demo --out runs/demo

test: setup $(LEROBOT_VENV)/.stamp
	$(PY) -m pytest -m "slow or not slow" test

# The unit tier only (test/unit: no rclpy, no subprocesses, no sim episodes). Plain `pytest`
# runs every tier but the slow tests; `make test` runs everything.
test-fast: setup
	$(PY) -m pytest test/unit

bench: setup
	$(PY) -m benchmarks.run --out bench_results

bench-robosuite: setup
	$(PY) -m benchmarks.bench_robosuite --work runs/bench_robosuite --out bench_results/robosuite

bench-robosuite-agentview: setup
	$(PY) -m benchmarks.bench_robosuite --camera agentview --init checkpoints/wide --randomize-scenes --no-fewshot \
		--work runs/bench_robosuite_agentview --out bench_results/robosuite_agentview

bench-gpu: setup
	$(PY) -m benchmarks.bench_gpu --out bench_results

# the shipped checkpoint across cameras, lenses, light, tables, depth noise, clutter, object size (~1 h on 2 cores; resumable)
bench-generalization: setup
	$(PY) -m benchmarks.bench_generalization --work runs/bench_generalization --out docs/generalization

checkpoint: setup
	$(PY) -m posevla_ros.cli make-checkpoint --out checkpoints/demo

# the viewpoint-randomized checkpoint (~85 min on 2 cores)
checkpoint-wide: setup
	$(PY) -m posevla_ros.cli make-checkpoint --wide --out checkpoints/wide

clean:
	rm -rf build $(VENV)
