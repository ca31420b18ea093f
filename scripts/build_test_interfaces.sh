#!/usr/bin/env bash
# Build the test-only interface packages under test/interfaces/ (today: control_msgs, which
# has no PyPI wheel) into a wheel-based ROS 2 venv, so that the executor's
# FollowJointTrajectory / GripperCommand action clients run against real rclpy action
# servers in the tests. Usage: scripts/build_test_interfaces.sh VENV_DIR
# A package that already imports from outside the venv (a sourced ROS install that has the
# real one) is left alone: the real package wins, nothing is built.
set -euo pipefail
VENV="$(cd "$1" && pwd)"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="$VENV/bin/python"
export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
. "$ROOT/scripts/cmake_package.sh"

for SRC in "$ROOT"/test/interfaces/*/; do
  PKG="$(basename "$SRC")"
  WHERE="$("$PY" -c "import $PKG, os; print(os.path.dirname($PKG.__file__))" 2>/dev/null || true)"
  if [ -n "$WHERE" ] && [[ "$WHERE" != "$VENV"/* ]]; then
    echo "[build_test_interfaces] $PKG imports from $WHERE (a real install): not building the test copy"
    continue
  fi
  BUILD="$ROOT/build/test_interfaces/$PKG"
  cmake_package build_test_interfaces "$SRC" "$BUILD" -DCMAKE_INSTALL_PREFIX="$VENV" \
    -DPython3_EXECUTABLE="$PY" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release
  "$PY" -c "import $PKG" 
  echo "[build_test_interfaces] installed the test build of $PKG into $VENV"
done
