"""PreSa on BallCircle (the demo task): the BallRun example with the demo's high-reward π_ref.

    .venv/bin/python examples/presa_ballcircle.py                   # shipped BallCircle data

π_ref is BC on the top 30 % episodes by reward (as ``retrofit demo``), which earns 0.68 normalised
reward at cost 2.85 (κ = 20); 8k PreSa steps make it safe while keeping most of the reward
(``docs/presa.md``, 3 seeds: ``docs/results/presa/ballcircle_high_reward_ref``). About 6 minutes on
one CPU core. ``--reference segments`` runs the paper's π_ref instead.
"""

from __future__ import annotations

from presa_ballrun import Args, main, parse_args

if __name__ == "__main__":
    main(parse_args(Args(task="OfflineBallCircle-v0", reference="high-reward", steps=8_000,
                         out="runs/presa_ballcircle")))
