"""Datasets of Pose-VLA's three training stages (see docs/training.md):

- ``shards``:   the grounding / motion on-disk format (npz shards + meta.json);
- ``motion``:   trajectories -> camera-frame waypoint targets;
- ``lerobot``:  LeRobot v3.0 writer (crash-safe, used by the recorder) and reader;
- ``sources``:  any of the above -> ``Sample`` lists for the trainer;
- ``augment``:  label-consistent crops and color jitter.
"""
from posevla_core.data.lerobot import LeRobotReader, LeRobotWriter
from posevla_core.data.motion import waypoints_from_trajectory
from posevla_core.data.shards import DataFormatError, Sample, ShardWriter, iter_shard_samples
from posevla_core.data.sources import STAGES, SourceConfig, detect_format, embodiment_samples, load_samples

__all__ = ["LeRobotReader", "LeRobotWriter", "waypoints_from_trajectory", "DataFormatError", "Sample",
           "ShardWriter", "iter_shard_samples", "STAGES", "SourceConfig", "detect_format", "embodiment_samples",
           "load_samples"]
