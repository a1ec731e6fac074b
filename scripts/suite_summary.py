"""One table and one figure over several `retrofit suite` output folders (docs/results/suite/).

For each task folder (its ``suite.json`` and ``results.csv``) and each method: mean ± std over
seeds of the normalised reward and cost at each κ, whether the mean cost is ≤ 1 (safe), the
reward kept relative to π_ref, and relative to the best safe episode in the data at that κ
(``dataset_stats`` of the folder's data file, when the file is reachable). A task counts as
*retrofitted* when PREFINE is safe at every κ and keeps ≥ 80 % of π_ref's normalised reward or
of the best safe reward in the data at every κ (issue 10's criterion).

    python scripts/suite_summary.py runs/suite/* --out docs/results/suite
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from retrofit.atomic import atomic_write, atomic_write_text
from retrofit.thresholds import is_safe_on_average

KEEP = 0.8


def best_safe_rewards(data_path: str, search: list[Path]) -> dict[float, float | None]:
    """κ → best normalised reward of a safe episode in the data (``{}`` if the file is not
    found at its recorded path, among the shipped files, or by name in ``search``)."""
    from retrofit.collect import dataset_stats
    from retrofit.data.dataset import TrajectoryDataset
    from retrofit.data.shipped import default_dataset_path

    name = Path(data_path).name
    shipped = Path(default_dataset_path()).parent
    found = next((p for p in [Path(data_path), shipped / name, *(d / name for d in search)]
                  if p.is_file()), None)
    if found is None:
        return {}
    stats = dataset_stats(TrajectoryDataset.from_hdf5(found))
    return {float(k): row["best_safe_norm_reward"] for k, row in stats["thresholds"].items()}


def task_rows(folder: Path, search: list[Path]) -> list[dict[str, Any]]:
    """The summary rows of one suite folder (one per method and κ)."""
    report = json.loads((folder / "suite.json").read_text())
    best = best_safe_rewards(report["data"]["path"], search)
    rows = []
    for s in report["summary"]:
        cost_threshold = float(s["cost_threshold"])
        best_k = best.get(cost_threshold)
        rows.append({
            "task": report["settings"]["name"], "method": s["method"],
            "cost_threshold": cost_threshold,
            "seeds": s["seeds"], "reward_mean": s["reward_mean"], "reward_std": s["reward_std"],
            "cost_mean": s["cost_mean"], "cost_std": s["cost_std"], "safe": s["safe"],
            "reward_kept_vs_reference": s["reward_kept"],
            "best_safe_reward_in_data": best_k,
            "reward_kept_vs_best_safe": (s["reward_mean"] / best_k
                                         if best_k is not None and best_k > 0 else None),
            "data": Path(report["data"]["path"]).name, "data_kind": report["data"]["kind"],
            "bc_steps": report["settings"]["bc_steps"],
            "steps": report["settings"]["prefine_steps"],
            "eval_episodes": report["settings"]["eval_episodes"],
        })
    return rows


def retrofitted(rows: list[dict[str, Any]], method: str = "prefine",
                at_every_threshold: bool = True) -> bool:
    """Safe and ≥ 80 % of π_ref's or of the best safe reward — at every κ, or
    (``at_every_threshold`` False) on average over the κ set (mean cost ≤ 1, mean reward ≥ 80 %
    of the mean yardstick)."""
    mine = [r for r in rows if r["method"] == method]
    if not mine:
        return False
    if at_every_threshold:
        def kept(r: dict[str, Any]) -> bool:
            return any(v is not None and v >= KEEP
                       for v in (r["reward_kept_vs_reference"], r["reward_kept_vs_best_safe"]))

        return all(r["safe"] and kept(r) for r in mine)
    reward = float(np.mean([r["reward_mean"] for r in mine]))
    cost = float(np.mean([r["cost_mean"] for r in mine]))
    refs = [r["reward_mean"] / r["reward_kept_vs_reference"] for r in mine
            if r["reward_kept_vs_reference"]]
    bests = [r["best_safe_reward_in_data"] for r in mine]
    yardsticks = ([float(np.mean(refs))] if refs else []) + (
        [float(np.mean(bests))] if all(b is not None for b in bests) else [])
    return bool(is_safe_on_average(cost)) and any(reward >= KEEP * y for y in yardsticks if y > 0)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f} %"


def markdown(rows: list[dict[str, Any]], tasks: list[str]) -> str:
    """The summary table and the per-task verdict."""
    lines = ["| task | method | κ | norm. reward | norm. cost | safe | kept vs π_ref | "
             "kept vs best safe in data |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['method']} | {r['cost_threshold']:g} | "
            f"{r['reward_mean']:.3f} ± {r['reward_std']:.3f} | {r['cost_mean']:.3f} ± "
            f"{r['cost_std']:.3f} | {'yes' if r['safe'] else 'no'} | "
            f"{_pct(r['reward_kept_vs_reference'])} | {_pct(r['reward_kept_vs_best_safe'])} |")
    for every, words in ((False, "on average over its κ set"), (True, "at every κ")):
        verdicts = [(t, retrofitted([r for r in rows if r["task"] == t], at_every_threshold=every))
                    for t in tasks]
        lines += ["", f"PREFINE safe while keeping ≥ {KEEP:.0%} of π_ref's or of the best safe "
                  f"reward in the data, {words}: {sum(v for _, v in verdicts)} of "
                  f"{len(verdicts)} tasks ("
                  f"{', '.join(f'{t} {chr(10003) if v else chr(10007)}' for t, v in verdicts)})."]
    return "\n".join(lines) + "\n"


def figure(rows: list[dict[str, Any]], tasks: list[str], path: Path) -> None:
    """Per task, mean normalised reward (bars) and cost (markers) over κ, by method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in ("reference", "prefine", "bc-safe")
               if any(r["method"] == m for r in rows)]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(6, 1.4 * len(tasks)), 6), sharex=True)
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        reward, cost = [], []
        for task in tasks:
            mine = [r for r in rows if r["task"] == task and r["method"] == method]
            reward.append(np.mean([r["reward_mean"] for r in mine]) if mine else np.nan)
            cost.append(np.mean([r["cost_mean"] for r in mine]) if mine else np.nan)
        x = np.arange(len(tasks)) + (i - (len(methods) - 1) / 2) * width
        top.bar(x, reward, width, label="π_ref" if method == "reference" else method)
        bottom.bar(x, cost, width)
    bottom.axhline(1.0, color="k", lw=0.8, ls="--")
    top.set_ylabel("norm. reward (mean over κ)")
    bottom.set_ylabel("norm. cost (mean over κ)")
    bottom.set_yscale("symlog", linthresh=1.0)
    bottom.set_xticks(np.arange(len(tasks)), tasks, rotation=30, ha="right")
    top.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)


def main() -> None:
    """Write summary.csv, summary.md and summary.png."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, nargs="*", default=[],
                        help="folders to look for data files by name (unshipped data)")
    args = parser.parse_args()
    folders = [f for f in args.folders if (f / "suite.json").is_file()]
    search = [p.parent for d in args.data_dir for p in d.rglob("*.hdf5")]
    rows = [row for folder in folders for row in task_rows(folder, search)]
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    args.out.mkdir(parents=True, exist_ok=True)
    columns = list(rows[0])
    lines = [",".join(columns)] + [",".join("" if r[c] is None else str(r[c]) for c in columns)
                                   for r in rows]
    atomic_write_text(args.out / "summary.csv", "\n".join(lines) + "\n")
    table = markdown(rows, tasks)
    atomic_write_text(args.out / "summary.md", table)
    figure(rows, tasks, args.out / "summary.png")
    print(table)


if __name__ == "__main__":
    main()
