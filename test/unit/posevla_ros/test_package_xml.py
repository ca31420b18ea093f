"""package.xml parses with catkin_pkg and declares what the code imports."""
import ast
import sys
from test.helpers.paths import REPO

import pytest

# import name -> rosdep key. Modules that only exist on a ROS install are imported inside
# try/except; they still must be declared so rosdep installs them there.
ROS_IMPORTS = {
    "rclpy": "rclpy", "std_msgs": "std_msgs", "geometry_msgs": "geometry_msgs", "sensor_msgs": "sensor_msgs",
    "trajectory_msgs": "trajectory_msgs", "std_srvs": "std_srvs", "visualization_msgs": "visualization_msgs",
    "rosgraph_msgs": "rosgraph_msgs", "builtin_interfaces": "builtin_interfaces",
    "rcl_interfaces": "rcl_interfaces", "tf2_ros": "tf2_ros", "cv_bridge": "cv_bridge",
    "message_filters": "message_filters", "control_msgs": "control_msgs", "launch": "launch",
    "launch_ros": "launch_ros", "moveit": "moveit_py", "ament_index_python": "ament_index_python",
    "numpy": "python3-numpy", "scipy": "python3-scipy", "yaml": "python3-yaml", "pinocchio": "pinocchio",
}
# Imported, but from pip on a ROS install (requirements/ros-<distro>.txt), never from rosdep:
# import name -> pip distribution pinned in every requirements/ros-*.txt.
PIP_IMPORTS = {"cv2": "opencv-python-headless", "torch": "torch", "transformers": "transformers"}
ROS_REQUIREMENTS = ("ros-humble.txt", "ros-jazzy.txt")
# always present with rclpy (transitive run deps of rclpy), need not be listed
IMPLIED = {"builtin_interfaces", "rcl_interfaces", "ament_index_python"}


@pytest.fixture(scope="module")
def package():
    from catkin_pkg.package import parse_package

    return parse_package(str(REPO / "package.xml"))


def _imports(paths):
    found = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_parses_and_valid(package):
    package.validate()
    assert package.name == "posevla_ros"
    assert package.get_build_type() == "ament_cmake"
    assert any("@" in m.email for m in package.maintainers)


def test_declares_what_the_code_imports(package):
    deps = {d.name for d in package.build_depends + package.exec_depends + package.buildtool_depends}
    files = list((REPO / "posevla_ros").rglob("*.py")) + list((REPO / "launch").glob("*.py")) \
        + list((REPO / "posevla_core").rglob("*.py"))
    imported = _imports(files)
    missing = sorted(ROS_IMPORTS[m] for m in imported if m in ROS_IMPORTS and m not in IMPLIED
                     and ROS_IMPORTS[m] not in deps)
    assert not missing, f"package.xml lacks <exec_depend> for: {missing}"


def test_message_deps(package):
    deps = {d.name for d in package.build_depends}
    assert {"std_msgs", "geometry_msgs"} <= deps
    assert "rosidl_interface_packages" in [g.name for g in package.member_of_groups]
    assert sys.version_info >= (3, 10)


def _pins(name: str) -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements" / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            dist, _, version = line.partition("==")
            assert version, f"{name}: {line!r} is not an exact pin"
            pins[dist.strip().lower()] = version.strip()
    return pins


def _conditional(package, name: str, environ: dict) -> list:
    """``name``'s exec_depends as rosdep sees them under ``environ`` (format 3 conditions)."""
    package.evaluate_conditions(environ)
    return [d for d in package.exec_depends if d.name == name and d.evaluated_condition]


def test_moveit_py_is_optional(package):
    """rosdep must not ask for moveit_py where the distro has none (Humble); the code needs it
    only for backend:=moveit."""
    assert [d.condition for d in package.exec_depends if d.name == "moveit_py"] == ["$ROS_DISTRO != humble"]
    assert _conditional(package, "moveit_py", {"ROS_DISTRO": "humble"}) == []
    for distro in ("jazzy", "kilted", "rolling"):
        assert len(_conditional(package, "moveit_py", {"ROS_DISTRO": distro})) == 1, distro


def test_pip_only_modules_are_pinned_not_rosdep(package):
    """cv2 must be >= 4.7 (cv2.aruco.CharucoDetector), which apt's python3-opencv on 22.04 / 24.04
    is not: it comes from pip, pinned per distro, and package.xml does not ask rosdep for it."""
    names = {d.name for d in package.build_depends + package.exec_depends + package.run_depends}
    assert "python3-opencv" not in names
    assert not any("bullet" in n for n in names), "pybullet must never be a ROS dependency"
    imported = _imports(list((REPO / "posevla_ros").rglob("*.py")) + list((REPO / "posevla_core").rglob("*.py")))
    for req in ROS_REQUIREMENTS:
        pins = _pins(req)
        for module, dist in PIP_IMPORTS.items():
            assert module in imported and dist in pins, (req, module)
        cv_major, cv_minor = (int(x) for x in pins["opencv-python-headless"].split(".")[:2])
        assert (cv_major, cv_minor) >= (4, 7), req
        assert pins["numpy"].startswith("1."), f"{req}: the distro's apt binaries are built against numpy 1.x"
        assert "pybullet" not in pins, f"{req}: a real-robot install must not need pybullet"
