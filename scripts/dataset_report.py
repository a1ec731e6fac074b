"""Statistics, scatter and sha256 of one collected dataset, as Markdown for docs/collection.md.

    .venv/bin/python scripts/dataset_report.py FILE --figure docs/figures/dataset_CarRun.png

Prints the contents table (episodes, transitions, reward/cost ranges), the per-κ table (safe
fraction, best safe normalised reward, safe share of the top-10 % episodes by reward), size,
sha256 and the collection's recorded training/rollout seconds; writes the reward–cost scatter.
Numbers come from ``retrofit.collect.dataset_stats`` and the figure from ``plot_dataset``.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from retrofit.collect import dataset_stats, plot_dataset
from retrofit.data.dataset import TrajectoryDataset
from retrofit.tasks import normalized_score


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def markdown(path: Path) -> str:
    """The Markdown tables of ``path``'s statistics."""
    data = TrajectoryDataset.from_hdf5(path)
    s = dataset_stats(data)
    meta = data.metadata
    lines = [
        f"File `{path.name}`: {path.stat().st_size / 2**20:.1f} MB, sha256 `{sha256(path)}`.",
        "",
        "| episodes | transitions | reward return | norm. reward | cost return |",
        "|---|---|---|---|---|",
        f"| {s['episodes']} | {s['transitions']} | {s['reward_min']:.1f} … {s['reward_max']:.1f} "
        f"(mean {s['reward_mean']:.1f}) | {s['norm_reward_min']:.2f} … "
        f"{s['norm_reward_max']:.2f} | {s['cost_min']:.0f} … {s['cost_max']:.0f} "
        f"(mean {s['cost_mean']:.1f}) |",
        "",
        "| κ | safe fraction | best safe norm. reward | top-10 % safe |",
        "|---|---|---|---|",
    ]
    for cost_threshold, row in s["thresholds"].items():
        best = row["best_safe_norm_reward"]
        lines.append(f"| {cost_threshold:g} | {100 * row['safe_fraction']:.1f} % | "
                     f"{'—' if best is None else f'{best:.2f}'} | "
                     f"{100 * row['top_decile_safe_fraction']:.1f} % |")
    rewards, _ = data.episode_returns()
    top = rewards >= np.quantile(rewards, 0.9)
    norm, _ = normalized_score(s["task"], rewards, np.zeros_like(rewards), 1.0)
    top_mean = float(norm[top].mean())
    kept = ", ".join(
        f"{100 * row['best_safe_norm_reward'] / top_mean:.0f} % at κ={cost_threshold:g}"
        for cost_threshold, row in s["thresholds"].items()
        if row["best_safe_norm_reward"] is not None)
    lines += ["", f"Top-10 % episodes by reward: mean normalised reward {top_mean:.2f}; the best "
              f"safe episode keeps {kept} of it (PREFINE's setting asks for an unsafe "
              "reward-greedy reference and safe episodes that keep most of its reward)."]
    if "train_seconds" in meta:  # files of older collectors; newer ones keep no wall-clock
        lines += ["", f"Recorded by the collector: {meta['train_seconds']} s of PPO training, "
                  f"{meta.get('rollout_seconds')} s of rollouts."]
    return "\n".join(lines)


def main() -> None:
    """Print the Markdown and write the scatter."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, help="DSRL-format HDF5 file made by retrofit collect")
    parser.add_argument("--figure", type=Path, help="where to write the reward–cost scatter PNG")
    args = parser.parse_args()
    print(markdown(args.file))
    if args.figure is not None:
        plot_dataset(TrajectoryDataset.from_hdf5(args.file), args.figure)
        print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
