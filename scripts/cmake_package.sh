# Sourced by scripts/build_msgs.sh and scripts/build_test_interfaces.sh: configure, build and
# install one CMake (ament / rosidl) package into a wheel-based ROS 2 venv.
#
#   cmake_package TAG SRC BUILD [cmake -D... args]
#
# The ROS wheels' exported CMake targets name include dirs of the Python they were built with
# (/opt/python/cp311-cp311/...). CMake reports an imported target with a non-existent include
# dir as an error, yet generates the Makefiles; exactly that error, and only with Makefiles, is
# accepted here. Any other configure error prints the log and fails.
cmake_package() {
  local tag="$1" src="$2" build="$3"
  shift 3
  mkdir -p "$build"
  local rc=0
  cmake -S "$src" -B "$build" "$@" > "$build.configure.log" 2>&1 || rc=$?
  if [ $rc -ne 0 ]; then
    local n_err n_known
    n_err=$(grep -c "CMake Error" "$build.configure.log" || true)
    n_known=$(grep -c "^  non-existent path" "$build.configure.log" || true)
    if [ -f "$build/Makefile" ] && [ "$n_err" -eq "$n_known" ]; then
      echo "[$tag] cmake configure returned $rc for the known wheel include-dir issue only; continuing"
    else
      cat "$build.configure.log" >&2
      echo "[$tag] cmake configure failed" >&2
      return $rc
    fi
  fi
  cmake --build "$build" -j2 > "$build.build.log" 2>&1 || { tail -50 "$build.build.log" >&2; return 1; }
  cmake --install "$build" > "$build.install.log" 2>&1 || { tail -50 "$build.install.log" >&2; return 1; }
}
