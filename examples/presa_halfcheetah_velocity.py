"""PreSa on HalfCheetahVelocity (SafetyGym): the BallRun example with SafetyGym defaults.

No dataset of this task ships with retrofit, and the examples download nothing, so it needs a
DSRL-format file of the task given with ``--dataset``: one made in the real environment by
``retrofit collect HalfCheetahVelocity --out runs/datasets``, or DSRL's own. Without one it stops
and says so. ``--small`` runs the same SafetyGym pipeline on the HopperVelocity data that does ship
(the closest task to HalfCheetah), with a small budget:

    .venv/bin/python examples/presa_halfcheetah_velocity.py --dataset FILE
    .venv/bin/python examples/presa_halfcheetah_velocity.py --small  # 67 s at OMP_NUM_THREADS=1

Table 4's SafetyGym preset (β 0.2, η 2.0, δ 0.9, batch 96, ...) is picked from the task; κ
defaults to 40, the middle of SafetyGym's {20, 40, 80}. Paper budget: 60k + 200k steps.
"""

from __future__ import annotations

from presa_ballrun import SMALL, Args, main, parse_args

DEFAULTS = Args(task="OfflineHalfCheetahVelocityGymnasium-v1",
                out="runs/presa_halfcheetah_velocity")
"""This example's settings: the BallRun example's with these fields changed."""

SMALL_SAFETYGYM = {**SMALL, "task": "OfflineHopperVelocityGymnasium-v1", "pretrain_steps": 200,
                   "steps": 200, "episodes": 2}
"""``--small``: the shipped HopperVelocity data (no HalfCheetah data ships), 1,000 feedback pairs,
200 BC and 200 PreSa steps (a SafetyGym step costs about three BulletGym ones), 2 evaluation
episodes (of up to 1,000 steps)."""

if __name__ == "__main__":
    main(parse_args(DEFAULTS, SMALL_SAFETYGYM, description=__doc__))
