"""Our MuJoCo Panda table-top scene: assets, scene, SimEnv, its look, options and randomization."""
