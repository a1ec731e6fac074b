"""PreSa on HalfCheetahVelocity (SafetyGym): the BallRun example with SafetyGym defaults.

Needs a DSRL-format file of the task, e.g. one made by
``retrofit collect HalfCheetahVelocity --out runs/datasets``:

    .venv/bin/python examples/presa_halfcheetah_velocity.py --dataset FILE

Table 4's SafetyGym preset (β 0.2, η 2.0, δ 0.9, batch 96, ...) is picked from the task; κ
defaults to 40, the middle of SafetyGym's {20, 40, 80}. Paper budget: 60k + 200k steps.
"""

from __future__ import annotations

from presa_ballrun import Args, main, parse_args

if __name__ == "__main__":
    main(parse_args(Args(task="OfflineHalfCheetahVelocityGymnasium-v1",
                         out="runs/presa_halfcheetah_velocity")))
