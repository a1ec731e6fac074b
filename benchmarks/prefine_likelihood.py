"""PREFINE vs SFT-only vs DPO-only under each reference likelihood (issue 14's table).

For each (task, seed): pretrain one reference per likelihood by BC on the top 30 % of episodes,
draw D_p / D_np at κ, fine-tune the same reference with PREFINE (β, λ: the task domain's preset),
SFT-only (``dpo_weight = 0``) and DPO-only (``sft_weight = 0``) for the same steps, and evaluate
each (deterministic actions). Per run it reports the min/max over all steps of the logged
``logps/dataset_{preferred,nonpreferred}``, the implicit accuracies of both DPO terms (mean of
the last 20 % of steps) and the rolled-out normalised reward / cost.

    .venv/bin/python benchmarks/prefine_likelihood.py --task OfflineBallCircle-v0 \
        --likelihoods tanh clipped clipped-fixed0.3 --seeds 0 --bc-steps 5000 --steps 2000
    .venv/bin/python benchmarks/prefine_likelihood.py ... --json > runs.jsonl   # JSON lines
    .venv/bin/python benchmarks/prefine_likelihood.py --summarize runs*.jsonl  # markdown table

Likelihood names: ``tanh`` (TanhGaussianPolicy), ``clipped`` (ClippedGaussianPolicy, learned
spread ≥ 0.05 half-ranges), ``clipped-fixedS`` (ClippedGaussianPolicy with constant spread S).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field

import torch

from retrofit.adapters import wrap
from retrofit.data.dataset import TrajectoryDataset
from retrofit.demo import default_dataset_path
from retrofit.evaluation import evaluate
from retrofit.methods.prefine import PrefineConfig, PrefineTrainer
from retrofit.pretrain import BCConfig, pretrain_reference
from retrofit.tasks import task_info
from retrofit.thresholds import is_safe_on_average

METHODS = {
    "prefine": {"dpo_weight": 1.0},
    "sft-only": {"dpo_weight": 0.0},
    "dpo": {"sft_weight": 0.0},
}


def bc_config(likelihood: str, steps: int) -> BCConfig:
    """The reference's ``BCConfig`` for a likelihood name (see the module docstring)."""
    if likelihood == "tanh":
        return BCConfig(steps=steps, policy="tanh-gaussian")
    if likelihood == "clipped":
        return BCConfig(steps=steps, policy="clipped-gaussian", fixed_std=None)
    if likelihood.startswith("clipped-fixed"):
        return BCConfig(
            steps=steps, policy="clipped-gaussian",
            fixed_std=float(likelihood.removeprefix("clipped-fixed")),
        )
    raise SystemExit(f"--likelihoods: unknown name {likelihood!r} (tanh, clipped, clipped-fixedS)")


@dataclass
class RunLog:
    """A ``MetricsLogger`` that keeps min/max of the log-likelihoods and late accuracies."""

    steps: int
    extremes: dict[str, list[float]] = field(default_factory=dict)
    late: dict[str, list[float]] = field(default_factory=dict)

    def log(self, step: int, metrics: dict[str, torch.Tensor]) -> None:
        """Record one step's metrics."""
        for key in ("logps/dataset_preferred", "logps/dataset_nonpreferred"):
            v = float(metrics[key])
            lo, hi = self.extremes.get(key, [math.inf, -math.inf])
            self.extremes[key] = [min(lo, v), max(hi, v)]
        if step > 0.8 * self.steps:
            for key in ("accuracy/preferred", "accuracy/nonpreferred", "loss/dpo_preferred"):
                self.late.setdefault(key, []).append(float(metrics[key]))

    def close(self) -> None:
        """Nothing to release."""

    def summary(self) -> dict[str, float]:
        """Min/max log-likelihoods and mean late accuracies."""
        out: dict[str, float] = {}
        for key, (lo, hi) in self.extremes.items():
            name = key.split("_")[-1]
            out[f"logp_{name}_min"], out[f"logp_{name}_max"] = round(lo, 2), round(hi, 2)
        for key, values in self.late.items():
            out[key.replace("/", "_")] = round(sum(values) / max(1, len(values)), 3)
        return out


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the grid; print a table (or JSON lines); return the rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="OfflineBallCircle-v0")
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--likelihoods", nargs="+", default=["tanh", "clipped"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--sft-weights", type=float, nargs="*", default=[], metavar="LAMBDA",
                        help="also run PREFINE with these SFT weights λ (method 'prefine-λ…')")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threshold", type=float, default=None,
                        help="κ (default: the middle of the task's three thresholds)")
    parser.add_argument("--bc-steps", type=int, default=5000)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--summarize", nargs="+", default=None, metavar="JSONL",
                        help="print the markdown table of earlier --json runs and exit")
    args = parser.parse_args(argv)
    if args.summarize:
        rows = [json.loads(line) for path in args.summarize for line in open(path) if line.strip()]
        print(summarize(rows))
        return rows

    torch.set_num_threads(1)
    info = task_info(args.task)
    if args.threshold is None:
        args.threshold = info.cost_thresholds[len(info.cost_thresholds) // 2]
    dataset = TrajectoryDataset.from_hdf5(
        args.dataset or default_dataset_path(args.task), task=args.task
    )
    rows = []
    for seed in args.seeds:
        preferred, nonpreferred = dataset.split_preferences(
            cost_threshold=args.threshold, seed=seed,
            top_fraction=0.5,  # the split of docs/results/prefine_likelihood (made before 0)
        )
        for likelihood in args.likelihoods:
            reference = pretrain_reference(
                dataset, bc_config(likelihood, args.bc_steps), device="cpu", seed=seed,
                progress=False,
            )
            ref = evaluate(reference, args.task, args.threshold, episodes=args.episodes,
                           seed=seed)
            runs = [("reference", None)] + [(m, METHODS[m]) for m in args.methods] + [
                (f"prefine-λ{w:g}", {"sft_weight": w}) for w in args.sft_weights]
            for method, overrides in runs:
                row: dict = {"task": args.task, "seed": seed, "likelihood": likelihood,
                             "method": method, "threshold": args.threshold}
                if overrides is None:
                    result = ref
                else:
                    config = PrefineConfig(steps=args.steps, **overrides).resolved(info.domain)
                    trainer = PrefineTrainer(wrap(reference), config, device="cpu", seed=seed)
                    log = RunLog(args.steps)
                    policy = trainer.fit(preferred, nonpreferred, logger=log, progress=False)
                    result = evaluate(policy, args.task, args.threshold, episodes=args.episodes,
                                      seed=seed)
                    row.update(log.summary())
                    row["updates_per_s"] = round(args.steps / trainer.train_wall_clock_s, 1)
                row["reward"] = round(float(result.normalized_reward), 3)
                row["cost"] = round(float(result.normalized_cost), 3)
                rows.append(row)
                print(json.dumps(row) if args.json else _format(row), flush=True)
    return rows


def summarize(rows: list[dict]) -> str:
    """Markdown table: per (task, likelihood, method), per-seed reward / cost and their means."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["task"], row["likelihood"], row["method"]), []).append(row)
    lines = [
        "| task | likelihood | method | seeds | reward (per seed) | cost (per seed) | mean reward "
        "| mean cost | safe cells | logp min | acc. pref. | acc. non-pref. |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (task, likelihood, method), group in groups.items():
        group.sort(key=lambda r: r["seed"])
        rewards = [r["reward"] for r in group]
        costs = [r["cost"] for r in group]

        def stat(key: str, fn=min, rows=group) -> str:  # type: ignore[no-untyped-def]
            values = [r[key] for r in rows if key in r]
            return f"{fn(values):.3g}" if values else "–"

        def mean(values: list[float]) -> float:
            return sum(values) / len(values)

        lines.append(
            f"| {task.removeprefix('Offline').removesuffix('-v0')} | {likelihood} | {method} | "
            f"{len(group)} | {' / '.join(f'{v:.3f}' for v in rewards)} | "
            f"{' / '.join(f'{v:.3f}' for v in costs)} | {mean(rewards):.3f} | {mean(costs):.3f} | "
            f"{int(is_safe_on_average(costs).sum())}/{len(costs)} | "
            f"{stat('logp_nonpreferred_min')} | "
            f"{stat('accuracy_preferred', mean)} | {stat('accuracy_nonpreferred', mean)} |"
        )
    return "\n".join(lines)


def _format(row: dict) -> str:
    keys = ("logp_preferred_min", "logp_nonpreferred_min", "logp_nonpreferred_max",
            "accuracy_preferred", "accuracy_nonpreferred")
    extra = "  ".join(f"{k}={row[k]}" for k in keys if k in row)
    return (f"{row['task']} seed={row['seed']} {row['likelihood']:<18} {row['method']:<9} "
            f"reward={row['reward']:.3f} cost={row['cost']:.3f}  {extra}")


if __name__ == "__main__":
    main(sys.argv[1:])
