"""PreSa on BallCircle (the demo task): the BallRun example with the demo's high-reward π_ref.

    .venv/bin/python examples/presa_ballcircle.py                   # shipped BallCircle data
    .venv/bin/python examples/presa_ballcircle.py --small  # 19 s at OMP_NUM_THREADS=1

π_ref is BC on the top 30 % episodes by reward (as ``retrofit demo``), which earns 0.68 normalised
reward at cost 2.85 (κ = 20); 8k PreSa steps keep 0.54 of it and lower the cost to 0.46 / 0.87 /
2.70 over training seeds 0 / 1 / 2 (``docs/presa.md``, ``docs/results/presa/
ballcircle_high_reward_ref``). Training longer does not help: up to 50k steps no checkpoint is
safe on average (best mean cost 1.29 at 20k; ``docs/results/presa/
ballcircle_high_reward_ref_presa50k``). About 6 minutes on one idle CPU core. ``--reference
segments`` runs the paper's π_ref instead; ``--method presa-filtered`` the variant that was safe
in every seed.
"""

from __future__ import annotations

from presa_ballrun import Args, main, parse_args

DEFAULTS = Args(task="OfflineBallCircle-v0", reference="high-reward", steps=8_000,
                out="runs/presa_ballcircle")
"""This example's settings: the BallRun example's with these fields changed."""

if __name__ == "__main__":
    main(parse_args(DEFAULTS, description=__doc__))
