#!/usr/bin/env bash
# Build msg/ (rosidl) and install this package into a wheel-based ROS 2 venv.
# Usage: scripts/build_msgs.sh VENV_DIR
# On a real ROS 2 install use `colcon build` instead; this script is the venv path.
# The hand-written Python is NOT copied into the venv: `make setup` installs the checkout
# editable (pip install -e .), so edits are live everywhere; only the generated messages,
# posevla_ros/__init__.py (which joins them to the source tree), the node executables and
# share/posevla_ros are installed here.
set -euo pipefail
VENV="$(cd "$1" && pwd)"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$ROOT/build/ros"
mkdir -p "$BUILD"
PY="$VENV/bin/python"
export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"

# The ROS wheels' exported CMake targets name include dirs of the Python they were built
# with (/opt/python/cp311-cp311/...: Python headers and numpy's headers). CMake reports
# imported targets with non-existent include dirs as errors, so point those paths at this
# interpreter's own headers when we may (root), and otherwise accept exactly that error.
link_missing() {  # link_missing WHEEL_PATH REAL_PATH
  if [ ! -e "$1" ] && [ -e "$2" ]; then  # -e is false for a dangling link too
    if mkdir -p "$(dirname "$1")" 2>/dev/null && ln -sfn "$2" "$1" 2>/dev/null; then
      echo "[build_msgs] linked $1 -> $2"
    fi
  fi
}
link_missing /opt/python/cp311-cp311/include/python3.11 \
  "$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
link_missing /opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include \
  "$("$PY" -c 'import numpy; print(numpy.get_include())')"

. "$ROOT/scripts/cmake_package.sh"
cmake_package build_msgs "$ROOT" "$BUILD" -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$PY" \
  -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release -DPOSEVLA_INSTALL_PYTHON_SOURCES=OFF
# Copies of the hand-written modules from an older full install would shadow the editable
# checkout (site-packages comes first on sys.path): remove them, keep the generated ones.
SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
for f in "$ROOT"/posevla_ros/*.py; do
  name="$(basename "$f")"
  [ "$name" = "__init__.py" ] || rm -f "$SITE/posevla_ros/$name"
done
rm -rf "$SITE/posevla_core"
echo "[build_msgs] installed posevla_ros messages into $VENV"
