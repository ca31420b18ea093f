"""Training of Pose-VLA: one stage end to end (``stages.train_main``), offline metrics
(``stages.eval_offline_main``), bin fitting, the object verifier, and the pipeline that makes
the shipped checkpoints.

    posevla train --stage grounding --data data/grounding --out runs/g
    posevla train --stage motion --data data/motion --init runs/g --out runs/m
    posevla train --stage embodiment --data data/demos --init runs/m --out runs/e
    posevla train --model paligemma --base /models/paligemma-3b-pt-224 --stage grounding ...
    accelerate launch --config_file config/accelerate/ddp_cpu.yaml -m posevla_core.train --stage ...
"""
