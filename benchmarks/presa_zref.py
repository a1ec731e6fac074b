"""PreSa's reference point and likelihood: small discriminating runs (issue 14, docs/presa.md).

One π_ref (the demo's: BC on the top 30 % episodes by reward, or ``--reference segments``, the
paper's B.4 BC on all segments), one synthetic feedback set (10k pairs, 64 steps, κ), then each
``method:z_ref[:likelihood][:key=value...]`` cell (e.g. ``presa:clamped:eta=1``; the key=value
tokens override ``PresaConfig`` fields) trains for ``--steps`` and is evaluated. Per cell: ν at
the end and its slope per 1k steps over the second half, the mean constraint, safety accuracy
and ψ of safe / unsafe segments over the last 20 % of steps, and the rolled-out normalised
reward / cost.

    .venv/bin/python benchmarks/presa_zref.py --cells safety-only:mean safety-only:clamped \
        presa:mean presa:clamped --steps 3000 --episodes 10           # add --json for JSON lines
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field

import numpy as np
import torch

from retrofit.adapters import wrap
from retrofit.data.dataset import TrajectoryDataset
from retrofit.demo import default_dataset_path
from retrofit.evaluation import evaluate
from retrofit.feedback import synthesize
from retrofit.methods.registry import get_method
from retrofit.pretrain import BCConfig, pretrain_reference

_LATE = ("constraint", "safety/accuracy", "scores/safe", "scores/unsafe", "safety/z_ref")


@dataclass
class Trace:
    """A ``MetricsLogger`` keeping ν per step and late means of the safety diagnostics."""

    steps: int
    nu: list[float] = field(default_factory=list)
    late: dict[str, list[float]] = field(default_factory=dict)

    def log(self, step: int, metrics: dict[str, torch.Tensor]) -> None:
        """Record one step."""
        self.nu.append(float(metrics["nu"]))
        if step > 0.8 * self.steps:
            for key in _LATE:
                self.late.setdefault(key, []).append(float(metrics[key]))

    def close(self) -> None:
        """Nothing to release."""

    def summary(self) -> dict[str, float]:
        """ν at the end, its slope per 1k steps over the second half, late means."""
        half = len(self.nu) // 2
        slope = (self.nu[-1] - self.nu[half]) / max(1, len(self.nu) - 1 - half) * 1000
        out = {"nu_end": round(self.nu[-1], 3), "nu_slope_per_1k": round(slope, 3),
               "nu_at_fifths": [round(self.nu[min(len(self.nu), k * self.steps // 5) - 1], 3)
                                for k in range(1, 6)]}
        for key, values in self.late.items():
            out[key.replace("/", "_")] = round(float(np.nanmean(values)), 3)
        return out


def main(argv: list[str] | None = None) -> list[dict]:
    """Run every cell; print rows (or JSON lines); return them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="OfflineBallCircle-v0")
    parser.add_argument("--cells", nargs="+", default=["safety-only:mean", "safety-only:clamped"])
    parser.add_argument("--reference", choices=("high-reward", "segments"), default="high-reward")
    parser.add_argument("--threshold", type=float, default=20.0)
    parser.add_argument("--bc-steps", type=int, default=5000)
    parser.add_argument("--bc-policy", choices=("tanh-gaussian", "clipped-gaussian"),
                        default="tanh-gaussian", help="high-reward π_ref's class")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    dataset = TrajectoryDataset.from_hdf5(default_dataset_path(args.task), task=args.task)
    feedback = synthesize(dataset, n_pairs=10_000, segment_length=64,
                          cost_threshold=args.threshold, seed=0)
    if args.reference == "segments":
        from retrofit.methods.presa import presa_reference

        reference = presa_reference(feedback, steps=args.bc_steps, device="cpu", seed=0,
                                    progress=False)
    else:
        reference = pretrain_reference(
            dataset, BCConfig(steps=args.bc_steps, policy=args.bc_policy), device="cpu",
            seed=0, progress=False,
        )
    ref = evaluate(reference, args.task, args.threshold, episodes=args.episodes, seed=args.seed)
    rows = [{"cell": "reference", "reward": round(float(ref.normalized_reward), 3),
             "cost": round(float(ref.normalized_cost), 3)}]
    print(json.dumps(rows[0]), flush=True)
    for cell in args.cells:
        method, z_ref, *rest = cell.split(":")
        trainer_cls, config_cls = get_method(method).load()
        overrides: dict = {"z_ref": z_ref, "steps": args.steps}
        for token in rest:
            if "=" in token:  # a config override, e.g. eta=1 or nu_learning_rate=0.05
                key, value = token.split("=", 1)
                overrides[key] = _number(value)
            else:
                overrides["likelihood"] = token
        config = config_cls(**overrides).resolved("bullet")
        trainer = trainer_cls(wrap(reference), config, device="cpu", seed=args.seed)
        trace = Trace(args.steps)
        policy = trainer.fit(feedback, logger=trace, progress=False)
        result = evaluate(policy, args.task, args.threshold, episodes=args.episodes,
                          seed=args.seed)
        row = {"cell": cell, "seed": args.seed, "train_s": round(trainer.train_wall_clock_s, 1),
               "reward": round(float(result.normalized_reward), 3),
               "cost": round(float(result.normalized_cost), 3), **trace.summary()}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def _number(text: str) -> int | float:
    """``"1"`` → 1, ``"0.05"`` → 0.05 (config overrides of a cell)."""
    return int(text) if text.lstrip("-").isdigit() else float(text)


if __name__ == "__main__":
    main(sys.argv[1:])
