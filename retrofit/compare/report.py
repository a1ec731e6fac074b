"""results.md and the two figures of a comparison (PREFINE Fig. 4 and Fig. 8 / PreSa Fig. 2)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from retrofit.thresholds import is_safe_on_average


def first_cost_safe(record: dict[str, Any]) -> dict[str, Any] | None:
    """The first checkpoint whose normalised cost is ≤ 1, whatever its reward (or None)."""
    return next((c for c in record["checkpoints"] if is_safe_on_average(c["normalized_cost"])),
                None)


def summarize(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per method: means over its cells, safe fractions and time-to-safe statistics."""
    by_method: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_record: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_method[record["row"]["method"]].append(record["row"])
        by_record[record["row"]["method"]].append(record)
    out: dict[str, dict[str, Any]] = {}
    for method, rows in by_method.items():
        settings: dict[tuple[str, float], list[float]] = defaultdict(list)
        for row in rows:
            settings[(row["task"], row["cost_threshold"])].append(row["normalized_cost"])
        reached = [r["time_to_safe_s"] for r in rows if r["time_to_safe_s"] is not None]
        cost_safe = [c for c in map(first_cost_safe, by_record[method]) if c is not None]
        out[method] = {
            "cells": len(rows),
            "normalized_reward": float(np.mean([r["normalized_reward"] for r in rows])),
            "normalized_cost": float(np.mean([r["normalized_cost"] for r in rows])),
            "safe_fraction": float(np.mean([is_safe_on_average(np.mean(c))
                                            for c in settings.values()])),
            "train_wall_clock_s": float(np.mean([r["train_wall_clock_s"] for r in rows])),
            "updates": float(np.mean([r["updates"] for r in rows])),
            "updates_per_s": float(np.mean([r["updates_per_s"] for r in rows])),
            "peak_rss_mb": float(np.max([r["peak_rss_mb"] for r in rows])),
            "time_to_safe_s": float(np.mean(reached)) if reached else None,
            "reached_safe": len(reached),
            "time_to_cost_safe_s": (float(np.mean([c["train_wall_clock_s"] for c in cost_safe]))
                                    if cost_safe else None),
            "reward_when_cost_safe": (float(np.mean([c["normalized_reward"] for c in cost_safe]))
                                      if cost_safe else None),
            "reached_cost_safe": len(cost_safe),
            "device": rows[0]["device"],
        }
    return out


def _fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def markdown(records: list[dict[str, Any]], meta: dict[str, Any], config: Any) -> str:
    """The Markdown report: settings, hardware, the per-method table and the per-κ table."""
    summary = summarize(records)
    base = summary.get("prefine")
    hw = meta["hardware_start"]
    refs = meta["references"]
    thresholds_text = ", ".join(f"{k:g}" for k in config.resolved_cost_thresholds())
    lines = [
        f"# Comparison on {records[0]['row']['task']}",
        "",
        f"- {len(records)} cells: methods {', '.join(config.methods)}; κ ∈ {{{thresholds_text}}}; "
        f"seeds {list(config.seeds)}; {config.steps} iterations each; batch size "
        f"{config.batch_size or 'method defaults (512 state–action pairs per update)'}.",
        f"- Final scores: {config.eval_episodes} deterministic episodes per cell. Time to safe: "
        f"checkpoints every {config.every()} steps, {config.checkpoint_episodes} episodes each, "
        "evaluated off the clock; \"safe\" = normalised cost ≤ 1 and normalised reward ≥ "
        f"{config.safe_reward_fraction:g} × π_ref's; \"time to cost ≤ 1\" ignores reward (the "
        "checkpoint's normalised reward in brackets).",
        f"- π_ref (BC, {config.bc_steps} steps, top-30% reward episodes): normalised reward "
        + ", ".join(f"{r['normalized_reward']:.3f} (seed {r['seed']})" for r in refs) + ".",
        f"- Hardware: {hw['cpu']}, {hw['cpu_count']} cores, GPU: {hw['gpu'] or 'none'}; torch "
        f"{hw['torch']}, {config.threads} thread(s) per cell; git {hw['git_commit']}; load "
        f"average at start {hw['load_average']}, at end {meta['hardware_end']['load_average']}.",
        f"- Data: `{meta['dataset']}`.",
        "",
        "| method | norm. reward | norm. cost | safe κ fraction | train wall-clock (s) | "
        "× PREFINE | updates/s | time to safe (s) | reached | time to cost ≤ 1 (s) "
        "[reward then] | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method in config.methods:
        s = summary[method]
        ratio = s["train_wall_clock_s"] / base["train_wall_clock_s"] if base else None
        lines.append(
            f"| {method} | {s['normalized_reward']:.3f} | {s['normalized_cost']:.3f} | "
            f"{s['safe_fraction']:.2f} | {s['train_wall_clock_s']:.1f} | {_fmt(ratio, 1)} | "
            f"{s['updates_per_s']:.1f} | {_fmt(s['time_to_safe_s'], 1)} | "
            f"{s['reached_safe']}/{s['cells']} | {_fmt(s['time_to_cost_safe_s'], 1)} "
            f"[{_fmt(s['reward_when_cost_safe'], 2)}; {s['reached_cost_safe']}/{s['cells']}] | "
            f"{s['peak_rss_mb']:.0f} |"
        )
    cost_thresholds = config.resolved_cost_thresholds()
    lines += ["", "Per cost threshold (mean over seeds): normalised reward / cost.", "",
              "| method | " + " | ".join(f"κ={k:g}" for k in cost_thresholds) + " |",
              "|---|" + "---|" * len(cost_thresholds)]
    cells: dict[tuple[str, float], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        row = record["row"]
        cells[(row["method"], row["cost_threshold"])].append(row)
    for method in config.methods:
        parts = []
        for cost_threshold in config.resolved_cost_thresholds():
            rows = cells[(method, cost_threshold)]
            if not rows:  # a method added by a later run with other κ values
                parts.append("—")
                continue
            parts.append(f"{np.mean([r['normalized_reward'] for r in rows]):.3f} / "
                         f"{np.mean([r['normalized_cost'] for r in rows]):.3f}")
        lines.append(f"| {method} | " + " | ".join(parts) + " |")
    return "\n".join(lines) + "\n"


def plot_scatter(path: Path, records: list[dict[str, Any]], meta: dict[str, Any],
                 config: Any) -> Path:
    """Normalised reward vs cost per method, marker area ∝ training wall-clock (PREFINE Fig. 4)."""
    from retrofit.plotting import save_png_atomic

    return save_png_atomic(scatter_figure(records, meta, config), path)


def scatter_figure(records: list[dict[str, Any]], meta: dict[str, Any], config: Any) -> Any:
    """The ``Figure`` of :func:`plot_scatter` (nothing is written)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    summary = summarize(records)
    fig = Figure(figsize=(6.0, 4.5), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    largest = max(s["train_wall_clock_s"] for s in summary.values())
    colors = [f"C{i}" for i in range(10)]
    for i, method in enumerate(config.methods):
        s = summary[method]
        size = 40 + 1500 * s["train_wall_clock_s"] / largest
        ax.scatter([s["normalized_cost"]], [s["normalized_reward"]], s=size, alpha=0.6,
                   color=colors[i % 10], edgecolors="black", linewidths=0.8,
                   label=f"{method} ({s['train_wall_clock_s']:.0f} s)")
    ref = float(np.mean([r["normalized_reward"] for r in meta["references"]]))
    ax.axhline(ref, color="black", linestyle=":", linewidth=1, label="π_ref reward")
    ax.axvline(1.0, color="tab:red", linestyle="--", linewidth=1.2, label="cost threshold")
    ax.set_xlabel("normalised cost (mean over κ and seeds)")
    ax.set_ylabel("normalised reward")
    ax.set_title(f"{records[0]['row']['task']}: marker area ∝ training wall-clock")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best", markerscale=0.4, framealpha=0.85)
    fig.tight_layout()
    return fig


def plot_safe_fraction(path: Path, records: list[dict[str, Any]], config: Any) -> Path:
    """Bar chart: fraction of (task, κ) settings whose mean normalised cost is ≤ 1."""
    from retrofit.plotting import save_png_atomic

    return save_png_atomic(safe_fraction_figure(records, config), path)


def safe_fraction_figure(records: list[dict[str, Any]], config: Any) -> Any:
    """The ``Figure`` of :func:`plot_safe_fraction` (nothing is written)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    summary = summarize(records)
    fig = Figure(figsize=(6.0, 3.6), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    methods = list(config.methods)
    values = [summary[m]["safe_fraction"] for m in methods]
    ax.bar(methods, values, color=[f"C{i % 10}" for i in range(len(methods))])
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("method")
    ax.set_ylabel("fraction of settings safe")
    ax.set_title("Safe (task, κ) settings: mean normalised cost ≤ 1")
    ax.tick_params(axis="x", labelrotation=30)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def write_reports(out: Path, records: list[dict[str, Any]], meta: dict[str, Any],
                  config: Any) -> None:
    """Write results.md, reward_cost.png and safe_fraction.png into ``out``."""
    from retrofit.atomic import atomic_write_text

    atomic_write_text(out / "results.md", markdown(records, meta, config))
    plot_scatter(out / "reward_cost.png", records, meta, config)
    plot_safe_fraction(out / "safe_fraction.png", records, config)
