"""Summary of ``cells.csv`` under docs/protocol.md: selection by rule, then paired report tables.

    python scripts/retrofit_vs_scratch_summary.py docs/results/retrofit-vs-scratch

reads ``cells.csv`` in that folder and writes ``summary.md``, ``summary.json`` and one figure per
task (``<Task>.png``: report-cell reward vs cost per method, the paper's PREFINE point marked).
The choices of the default and of each baseline's budget are computed here from the selection
cells alone, by the rules of docs/protocol.md, so nobody picks them by eye.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from retrofit_vs_scratch import VARIANTS  # the variant registry, beside this script

from retrofit.thresholds import is_safe_on_average

# PREFINE Table 1 (DSRL's data, mean over κ): normalised reward, cost.
PAPER_PREFINE = {
    "OfflineBallCircle-v0": (0.71, 0.35), "OfflineBallRun-v0": (0.41, 0.41),
    "OfflineCarRun-v0": (0.93, 0.38), "OfflineDroneRun-v0": (0.57, 0.42),
    "OfflineHalfCheetahVelocityGymnasium-v1": (0.86, 0.15),
}
# PreSa's own Table 1 (normalised reward, cost; mean over κ 10/20/40, DSRL's data, PreSa's
# feedback from the whole dataset), beside our PreSa rows.
PAPER_PRESA = {"OfflineBallCircle-v0": (0.22, 0.03), "OfflineBallRun-v0": (0.19, 0.09)}
# Rule 1's candidates (amendments 1-4, 6, 9, 10 and 11 added those after the first four). Ties
# (within TIE) go to the larger λ, then to the earlier entry: the incumbent default comes before
# the variants that challenge it; a candidate with another reference family (amendment 10's VAE)
# loses every tie, whatever its λ — the user's Gaussian π_ref stays unless beaten.
DEFAULT_CANDIDATES = ("prefine-l0.3-20k", "prefine-l0.1-20k", "prefine-l1-20k", "dpo-20k",
                      "prefine-l0.3-lr3e-5-20k", "prefine-l1-lr3e-5-20k", "dpo-lr3e-5-20k",
                      "prefine-l0.3-lr3e-5-npnear-20k", "prefine-l0.1-lr3e-5-20k",
                      "prefine-l0.3-lr3e-5-ema-20k", "prefine-l0.3-lr3e-5-top100-20k",
                      "dpo-lr3e-5-top100-20k", "prefine-vae-top100-20k",
                      "prefine-vae-paper-top100-20k", "prefine-vae-kl0.05-top100-20k")


def candidate_lambda(name: str) -> float:
    """λ of a rule-1 candidate, read from its registered variant (DPO-only: 0)."""
    variant = VARIANTS[name]
    return 0.0 if variant.method == "dpo" else float(variant.overrides["sft_weight"])


def candidate_tie_rank(name: str) -> float:
    """Rule 1's tie order: λ for the Gaussian-π_ref candidates, below every λ for another
    reference family (amendment 10)."""
    return candidate_lambda(name) if VARIANTS[name].reference == "clipped-gaussian" else -1.0


# Rule 4 (amendments 5 and 12): PreSa's z_ref × η; ties go to the paper-literal setting, then to the
# library default; with no candidate safe everywhere, the least unsafe one is reported.
PRESA_CANDIDATES = ("presa-mean-eta0.1-top100-20k", "presa-clamped-eta1-top100-20k",
                    "presa-clamped-eta0.1-top100-20k", "presa-mean-eta1-top100-20k",
                    "presa-clamped-eta1-nu0.025-top100-20k",
                    "presa-clamped-eta1-nu0.025-beta0.2-top100-20k")
BASELINE_BUDGETS = {
    "sft-only": ("sft-only-2k", "sft-only-20k"),
    "bc-safe": ("bc-safe-2k", "bc-safe-20k"),
    "bc-safe-full": ("bc-safe-full-2k", "bc-safe-full-20k"),
}
# The baselines that read D_p are reported on the default's D_p (amendment 6): the suffix of the
# variants trained on it, by default recipe.
D_P_SUFFIX = {"prefine-l0.3-lr3e-5-top100-20k": "-top100"}
D_P_BASELINES = ("sft-only", "bc-safe")
# The default before amendment 6 and its baselines, shown beside the chosen ones (never instead).
EARLIER = {"prefine (before amendment 6)": "prefine-l0.3-lr3e-5-20k",
           "sft-only (D_p before amendment 6)": "sft-only-2k",
           "bc-safe (D_p before amendment 6)": "bc-safe-2k"}
# PreSa's report cells made before amendment 13, when no candidate was safe and the least unsafe
# stood in: kept beside rule 4's choice (never instead).
EARLIER_PRESA = {"presa (amendment 12, least unsafe)": "presa-clamped-eta1-top100-20k"}
TIE = 0.01
REPORT_SEEDS = (3, 4, 5, 6, 7)


def read_cells(path: Path) -> list[dict[str, Any]]:
    """The rows of ``cells.csv`` with numbers parsed."""
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["report_name"], row["method"] = row["method"], row["variant"]
        for key in ("cost_threshold", "normalized_reward", "normalized_cost"):
            row[key] = float(row[key])
        row["seed"] = int(row["seed"])
    return rows


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error (sample std / √n; nan for n < 2)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def groups(rows: list[dict[str, Any]], split: str) -> dict[tuple[str, str, float], list[dict]]:
    """(method, task, κ) -> that split's cells."""
    out: dict[tuple[str, str, float], list[dict]] = defaultdict(list)
    for row in rows:
        if row["split"] == split:
            out[(row["method"], row["task"], row["cost_threshold"])].append(row)
    return out


def selection_score(rows: list[dict[str, Any]], method: str) -> dict[str, Any] | None:
    """A variant's selection record: mean reward over its selection cells, safe in every group."""
    cells = groups(rows, "selection")
    mine = {key: members for key, members in cells.items() if key[0] == method}
    if not mine:
        return None
    rewards = [r["normalized_reward"] for members in mine.values() for r in members]
    costs = [r["normalized_cost"] for members in mine.values() for r in members]
    safe_everywhere = all(
        is_safe_on_average(sum(r["normalized_cost"] for r in m) / len(m)) for m in mine.values())
    return {"method": method, "reward": sum(rewards) / len(rewards),
            "cost": sum(costs) / len(costs), "cells": len(rewards), "groups": len(mine),
            "safe_in_every_group": safe_everywhere}


def complete_candidates(rows: list[dict[str, Any]], candidates: tuple[str, ...]
                        ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(scored, complete)``: the selection records of the candidates that have cells, and
    those among them with every selection cell (a candidate with a missing cell is never
    chosen)."""
    scored = [s for s in (selection_score(rows, c) for c in candidates) if s is not None]
    if not scored:
        return scored, []
    needed = max((s["groups"], s["cells"]) for s in scored)
    return scored, [s for s in scored if (s["groups"], s["cells"]) == needed]


def choose(rows: list[dict[str, Any]], candidates: tuple[str, ...],
           tie_key: dict[str, float] | None = None) -> tuple[str | None, list[dict[str, Any]]]:
    """docs/protocol.md's rule: best mean selection reward among the safe-everywhere ones."""
    scored, complete = complete_candidates(rows, candidates)
    if not complete:
        return None, scored
    safe = [s for s in complete if s["safe_in_every_group"]] or complete
    best = max(s["reward"] for s in safe)
    tied = [s for s in safe if best - s["reward"] <= TIE]
    if tie_key:
        tied.sort(key=lambda s: -tie_key.get(s["method"], 0.0))
    else:
        tied.sort(key=lambda s: -s["reward"])
    return tied[0]["method"], scored


def choose_presa(rows: list[dict[str, Any]]) -> tuple[str | None, bool]:
    """Rule 4 of docs/protocol.md: ``(setting, chosen_by_the_rule)``; ``False`` when no
    candidate was safe in every group and the least unsafe one stands in for the report."""
    _, complete = complete_candidates(rows, PRESA_CANDIDATES)
    if not complete:
        return None, False
    safe = [s for s in complete if s["safe_in_every_group"]]
    if not safe:
        return min(complete, key=lambda s: s["cost"])["method"], False
    best = max(s["reward"] for s in safe)
    tied = [s for s in safe if best - s["reward"] <= TIE]  # PRESA_CANDIDATES order breaks ties
    return tied[0]["method"], True


def paired(rows: list[dict[str, Any]], a: str, b: str, task: str, key: str,
           split: str = "report") -> dict[str, Any] | None:
    """Mean ± SE of ``a − b`` over the (κ, seed) cells both have on ``task``."""
    by = {(r["method"], r["cost_threshold"], r["seed"]): r[key] for r in rows
          if r["task"] == task and r["split"] == split}
    diffs = [by[(a, k, s)] - by[(b, k, s)] for (m, k, s) in by if m == a and (b, k, s) in by]
    if not diffs:
        return None
    mean, se = mean_se(diffs)
    verdict = ("win" if mean > 2 * se else "loss" if mean < -2 * se else "tie") \
        if not math.isnan(se) else "n<2"
    return {"mean": mean, "se": se, "n": len(diffs), "verdict": verdict}


def data_ceiling(task: str, cost_thresholds: list[float]) -> list[dict[str, Any]]:
    """What the shipped data allows at each κ: the normalised reward of the best, 10th and 50th
    best SAFE episode (cost return < κ, the split's predicate) and of D_p over the report seeds.

    A method that imitates safe behaviour cannot be expected far above the best safe episodes;
    the paper's numbers are on DSRL's data, whose safe frontier can sit higher.
    """
    import numpy as np

    from retrofit.data.dataset import TrajectoryDataset
    from retrofit.suite.runner import find_data, settings_for
    from retrofit.tasks import normalized_score

    settings = settings_for(task)
    source = find_data(settings)
    if source is None:
        return []
    data = TrajectoryDataset.from_hdf5(source.path)
    rewards, costs = data.episode_returns()
    out = []
    for cost_threshold in cost_thresholds:
        norm = normalized_score(task, rewards, costs, cost_threshold)[0]
        safe = np.sort(norm[costs < cost_threshold])[::-1]
        d_p: dict[float, list[float]] = {0.5: [], 0.01: []}  # top_fraction: amendment 6's two
        for top_fraction, means in d_p.items():
            for seed in REPORT_SEEDS:
                preferred, _ = data.split_preferences(
                    cost_threshold, n_preferred=settings.n_preferred,
                    n_nonpreferred=settings.n_nonpreferred, seed=seed, top_fraction=top_fraction)
                means.append(float(np.mean(normalized_score(
                    task, preferred.episode_returns()[0], 0.0, cost_threshold)[0])))
        out.append({"task": task, "cost_threshold": cost_threshold, "n_safe": int(len(safe)),
                    "best": float(safe[0]), "tenth": float(safe[min(9, len(safe) - 1)]),
                    "fiftieth": float(safe[min(49, len(safe) - 1)]),
                    "d_p_mean": float(np.mean(d_p[0.5])),
                    "d_p_top100_mean": float(np.mean(d_p[0.01]))})
    return out


def recorded_ceiling(folder: Path, task: str) -> list[dict[str, Any]]:
    """``task``'s rows of the data table as the last summary.json recorded them: a task whose
    data was collected, not shipped (DroneRun, HalfCheetahVelocity), keeps its rows on a
    machine without the file instead of losing them from the table."""
    path = folder / "summary.json"
    if not path.exists():
        return []
    recorded = json.loads(path.read_text()).get("data_ceiling", [])
    return [c for c in recorded if c["task"] == task]


def learning_curves(folder: Path) -> tuple[list[str], dict[str, list[dict[str, Any]]]]:
    """Markdown lines and data of the 100k-update curves in ``folder/curve100k/<Task>.jsonl``
    (``benchmarks/prefine_along_training.py --json``, one row per checkpoint), plus their PNG."""
    curves = {}
    for path in sorted((folder / "curve100k").glob("*.jsonl")):
        curves[path.stem] = [json.loads(line) for line in path.read_text().splitlines() if line]
    if not curves:
        return [], curves
    lines = ["", "## Learning curves to 100 000 updates (selection cell: seed 0, κ 20)", "",
             "Default recipe (λ 0.3, lr 3e-5), rolled out every 10 000 updates for 10 episodes; "
             "raw weights and an exponential average (decay 0.999). Normalised reward / cost.", "",
             "| task | " + " | ".join(f"{r['step'] // 1000}k" for r in
                                       max(curves.values(), key=len)) + " |",
             "|---|" + "---|" * max(len(v) for v in curves.values())]
    for task, rows in curves.items():
        for kind in ("raw", "ema"):
            lines.append(f"| {task} ({kind}) | " + " | ".join(
                f"{r[f'{kind}_reward']:.3f} / {r[f'{kind}_cost']:.2f}" for r in rows) + " |")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from retrofit.plotting import save_png_atomic

    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.4), squeeze=False)
    for ax, (task, rows) in zip(axes[0], curves.items(), strict=True):
        steps = [r["step"] for r in rows]
        for kind in ("raw", "ema"):
            ax.plot(steps, [r[f"{kind}_reward"] for r in rows], marker="o", label=f"{kind} reward")
            ax.plot(steps, [r[f"{kind}_cost"] for r in rows], linestyle="--",
                    label=f"{kind} cost")
        ax.axvline(20_000, color="grey", linewidth=1)
        ax.set_title(task)
        ax.set_xlabel("PREFINE updates")
    axes[0][0].set_ylabel("normalised reward (—), cost (--)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    save_png_atomic(fig, folder / "curve100k.png", dpi=110)
    plt.close(fig)
    lines += ["", "![learning curves](curve100k.png)"]
    return lines, curves


def fmt(mean: float, se: float) -> str:
    """``mean ± se`` with three decimals."""
    return f"{mean:+.3f} ± {se:.3f}" if not math.isnan(se) else f"{mean:+.3f}"


def plot_task(rows: list[dict[str, Any]], task: str, methods: list[str], path: Path) -> None:
    """Report-cell reward vs cost per method (mean ± SE), each cell faint, the paper's point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from retrofit.plotting import save_png_atomic

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, method in enumerate(methods):
        cells = [r for r in rows if r["task"] == task and r["method"] == method
                 and r["split"] == "report"]
        if not cells:
            continue
        xs = [r["normalized_cost"] for r in cells]
        ys = [r["normalized_reward"] for r in cells]
        colour = colours[i % len(colours)]
        ax.scatter(xs, ys, color=colour, alpha=0.25, s=14)
        (mx, sx), (my, sy) = mean_se(xs), mean_se(ys)
        ax.errorbar(mx, my, xerr=0 if math.isnan(sx) else sx, yerr=0 if math.isnan(sy) else sy,
                    fmt="o", color=colour, label=method, capsize=3)
    if task in PAPER_PREFINE:
        px, py = PAPER_PREFINE[task][1], PAPER_PREFINE[task][0]
        ax.scatter([py * 0 + px], [py], marker="*", s=180, color="black",
                   label="PREFINE paper, Table 1 (DSRL data)")
    if task in PAPER_PRESA:
        ax.scatter([PAPER_PRESA[task][1]], [PAPER_PRESA[task][0]], marker="P", s=120,
                   color="black", label="PreSa paper, Table 1 (DSRL data)")
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("normalised cost (≤ 1 is safe)")
    ax.set_ylabel("normalised reward")
    ax.set_title(f"{task}: report cells (seeds 3–7), mean ± SE")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    save_png_atomic(fig, path, dpi=110)
    plt.close(fig)


def paper_cell(task: str, label: str) -> str:
    """The published (reward / cost) a report row stands beside: PREFINE's for the default
    recipe, PreSa's for PreSa, nothing for the baselines."""
    paper = (PAPER_PREFINE if label.startswith("prefine") else
             PAPER_PRESA if label.startswith("presa") else {}).get(task)
    return f"{paper[0]:.2f} / {paper[1]:.2f}" if paper else ""


def summarize(folder: Path) -> dict[str, Any]:
    """Write summary.md, summary.json and the figures; return the summary."""
    from retrofit.atomic import atomic_write_text

    rows = read_cells(folder / "cells.csv")
    tasks = sorted({r["task"] for r in rows})
    default, default_scores = choose(rows, DEFAULT_CANDIDATES,
                                     {c: candidate_tie_rank(c) for c in DEFAULT_CANDIDATES})
    budgets = {name: choose(rows, options) for name, options in BASELINE_BUDGETS.items()}
    suffix = D_P_SUFFIX.get(default or "", "")
    for name in D_P_BASELINES:  # rule 2's budget, trained on the default's D_p
        chosen_budget, scored = budgets[name]
        if suffix and chosen_budget:
            budgets[name] = (chosen_budget + suffix, scored)
    lines = ["# Retrofitting vs starting over (issue 21)", "",
             "Protocol: [docs/protocol.md](../../protocol.md). One torch thread per process. "
             "Data: this project's collected BulletGym files (`retrofit/data/default/`), "
             "not DSRL's.", "", "## Selection cells (seeds 0–2): what the rules chose", "",
             "| variant | mean norm. reward | cells | safe in every (task, κ) |",
             "|---|---|---|---|"]
    every = sorted({r["method"] for r in rows if r["split"] == "selection"})
    for method in every:
        s = selection_score(rows, method)
        if s:
            lines.append(f"| {method} | {s['reward']:.3f} | {s['cells']} | "
                         f"{'yes' if s['safe_in_every_group'] else 'no'} |")
    presa, presa_by_rule = choose_presa(rows)
    lines += ["", f"Default recipe by rule 1: **{default}**.", ""]
    if presa:
        lines += [f"PreSa setting by rule 4: **{presa}**" + (
            "" if presa_by_rule else " (no candidate was safe on average in every selection "
            "group; the least unsafe one stands in)") + ".", ""]
    for name, (chosen, _) in budgets.items():
        lines.append(f"- {name}: budget chosen by rule 2: **{chosen}**")
    lines += ["", "Per task and variant (selection cells):", "",
              "| task | κ | variant | norm. reward (mean ± SE) | norm. cost | safe |",
              "|---|---|---|---|---|---|"]
    for (method, task, cost_threshold), members in sorted(
            groups(rows, "selection").items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
        r = mean_se([m["normalized_reward"] for m in members])
        c = mean_se([m["normalized_cost"] for m in members])[0]
        lines.append(f"| {task} | {cost_threshold:g} | {method} | {r[0]:.3f} ± {r[1]:.3f} | "
                     f"{c:.3f} | {'yes' if is_safe_on_average(c) else 'no'} |")

    chosen = {"prefine (default)": default, **{n: b[0] for n, b in budgets.items()},
              "presa": presa, "reference": "reference",
              **{label: v for label, v in EARLIER.items() if v != default and suffix},
              **{label: v for label, v in EARLIER_PRESA.items() if v != presa}}
    report_methods = [m for m in chosen.values() if m]
    lines += ["", "## Report cells (seeds 3–7)", "",
              "| task | κ | method | norm. reward (mean ± SE) | norm. cost (mean ± SE) | safe | n "
              "| paper's Table 1 (PREFINE's; PreSa's for presa) |",
              "|---|---|---|---|---|---|---|---|"]
    report = groups(rows, "report")
    verdicts: dict[str, dict[str, Any]] = {}
    for task in tasks:
        for (method, t, cost_threshold), members in sorted(report.items()):
            if t != task or method not in report_methods:
                continue
            label = next(k for k, v in chosen.items() if v == method)
            r = mean_se([m["normalized_reward"] for m in members])
            c = mean_se([m["normalized_cost"] for m in members])
            lines.append(
                f"| {task} | {cost_threshold:g} | {label}: {method} | {r[0]:.3f} ± {r[1]:.3f} | "
                f"{c[0]:.3f} ± {c[1]:.3f} | {'yes' if is_safe_on_average(c[0]) else 'no'} | "
                f"{len(members)} | "
                + paper_cell(task, label) + " |")
        verdicts[task] = {}
        for label, other in chosen.items():
            if other in (None, default, "reference"):  # π_ref is unsafe: no baseline to beat
                continue
            verdicts[task][label] = {
                "reward": paired(rows, default, other, task, "normalized_reward"),
                "cost": paired(rows, default, other, task, "normalized_cost"),
            }
    lines += ["", f"## Paired differences on report cells: {default} − baseline", "",
              "(mean ± SE over (κ, seed); win/loss = beyond 2 SE)", "",
              "| task | baseline | Δ norm. reward | verdict | Δ norm. cost | n |",
              "|---|---|---|---|---|---|"]
    for task, per in verdicts.items():
        for label, d in per.items():
            if d["reward"] is None:
                continue
            lines.append(f"| {task} | {label} | {fmt(d['reward']['mean'], d['reward']['se'])} | "
                         f"{d['reward']['verdict']} | {fmt(d['cost']['mean'], d['cost']['se'])} "
                         f"| {d['reward']['n']} |")
    ceilings = [c for task in tasks for c in data_ceiling(
        task, sorted({r["cost_threshold"] for r in rows if r["task"] == task}))
        or recorded_ceiling(folder, task)]
    lines += ["", "## What the data allows (shipped files; normalised reward of SAFE episodes)",
              "", "| task | κ | SAFE episodes | best | 10th best | 50th best | D_p mean, top half "
              "(report seeds) | D_p mean, 100 best | default recipe (report mean) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for c in ceilings:
        mine = [r["normalized_reward"] for r in rows if r["task"] == c["task"]
                and r["method"] == default and r["split"] == "report"
                and r["cost_threshold"] == c["cost_threshold"]]
        lines.append(f"| {c['task']} | {c['cost_threshold']:g} | {c['n_safe']} | "
                     f"{c['best']:.3f} | {c['tenth']:.3f} | {c['fiftieth']:.3f} | "
                     f"{c['d_p_mean']:.3f} | {c['d_p_top100_mean']:.3f} | "
                     + (f"{sum(mine) / len(mine):.3f}" if mine else "—") + " |")
    curve_lines, curves = learning_curves(folder)
    lines += curve_lines
    for task in tasks:
        plot_task(rows, task, report_methods, folder / f"{task.removeprefix('Offline')}.png")
    summary = {"default": default, "default_scores": default_scores, "presa": presa,
               "presa_chosen_by_rule": presa_by_rule,
               "budgets": {n: b[0] for n, b in budgets.items()},
               "budget_scores": {n: b[1] for n, b in budgets.items()}, "verdicts": verdicts,
               "data_ceiling": ceilings, "learning_curves_100k": curves}
    atomic_write_text(folder / "summary.json", json.dumps(summary, indent=2))
    atomic_write_text(folder / "summary_tables.md", "\n".join(lines) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    """Command line: summarise one results folder."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    summary = summarize(args.folder)
    print(json.dumps({k: summary[k] for k in ("default", "budgets")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
