"""`make bench-generalization`: the camera generalization suite (posevla_ros/cli/bench_generalization.py,
also `posevla bench-generalization`): pick success of a checkpoint per camera viewpoint, field
of view and image size, each axis alone, on held-out seeds. Same flags as the CLI."""
from posevla_ros.cli.bench_generalization import main

if __name__ == "__main__":
    raise SystemExit(main())
