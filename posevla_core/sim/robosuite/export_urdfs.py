"""Write the shipped kinematic URDFs of robosuite's arms (config/robots/robosuite/<arm>.urdf)
from robosuite's own compiled model, one RobosuiteEnv per arm:
    python -m posevla_core.sim.robosuite.export_urdfs UR5e Kinova3 IIWA
"""
from __future__ import annotations

import sys

from posevla_core.sim.robosuite.env import RobosuiteEnv
from posevla_core.sim.robosuite.urdf import export_urdf, urdf_path


def main(argv=None) -> int:
    for arm in (argv if argv is not None else sys.argv[1:]):
        env = RobosuiteEnv("Lift", robot=arm, width=64, height=64)
        path = urdf_path(env.arm_spec.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(export_urdf(env))
        env.close()
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
