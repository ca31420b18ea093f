"""robosuite tasks behind SimEnv's interface: the headless import, the env wrapper, the arms' URDFs."""
