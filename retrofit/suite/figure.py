"""The suite's ``reward_cost.png``: the dataset's reward–cost cloud, each method per κ, and the
data warnings (:mod:`retrofit.suite.checks`) written on the figure.

Axes: episode cost return (raw, so that every κ is a vertical line on one axis) against
normalised reward. Each (method, κ) is one marker at its mean over seeds; π_ref is evaluated
once per seed, so its marker is the same at every κ.
"""

from __future__ import annotations

import textwrap
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retrofit.suite.checks import DataWarning
from retrofit.suite.settings import TaskSettings

_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def suite_figure(settings: TaskSettings, data: Any, rows: Sequence[dict[str, Any]],
                 warnings: Sequence[DataWarning] = ()) -> Any:
    """Build the figure (a matplotlib ``Figure`` on the Agg canvas; nothing is written)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from retrofit.tasks import normalized_score

    notes = [textwrap.fill("Warning: " + w.message, 110) for w in warnings]
    if warnings:
        notes.append(textwrap.fill("What to do: " + warnings[0].remedy, 110))
    note = "\n".join(notes)
    # the notes' height in inches: 6.5-pt lines spaced 1.2, plus a margin
    extra = (0.11 * (note.count("\n") + 1) + 0.15) if note else 0.0
    fig = Figure(figsize=(7.5, 5.0 + extra), dpi=130)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    rewards, costs = data.episode_returns()
    norm = normalized_score(settings.task, rewards, costs, 1.0)[0]
    ax.scatter(costs, norm, s=6, c="0.7", alpha=0.6, linewidths=0,
               label=f"dataset ({data.n_episodes} episodes)", zorder=1)
    groups: dict[tuple[str, float], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["method"], float(row["cost_threshold"]))].append(row)
    methods = list(dict.fromkeys(row["method"] for row in rows))
    for i, method in enumerate(methods):
        color = "black" if method == "reference" else f"C{i % 10}"
        points = []
        for cost_threshold in settings.cost_thresholds:
            members = groups.get((method, cost_threshold), [])
            if members:
                points.append((np.mean([float(r["normalized_cost"]) * cost_threshold
                                        for r in members]),
                               np.mean([float(r["normalized_reward"]) for r in members])))
        if points:
            xs, ys = zip(*points, strict=True)
            ax.scatter(xs, ys, s=70, color=color, edgecolors="white", linewidths=1.2,
                       marker=_MARKERS[i % len(_MARKERS)], zorder=10 + i,
                       label="π_ref" if method == "reference" else method)
    for j, cost_threshold in enumerate(settings.cost_thresholds):
        ax.axvline(cost_threshold, color="tab:red", linestyle="--", linewidth=1.0,
                   alpha=0.4 + 0.2 * j,
                   label="κ = " + "/".join(f"{k:g}" for k in settings.cost_thresholds)
                   if j == 0 else None, zorder=5)
    ax.set_xlabel("episode cost return")
    ax.set_ylabel("normalised reward")
    ax.set_title(f"{settings.task}: dataset and policies (mean over seeds, one marker per κ)",
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best", framealpha=0.85)
    if note:
        fig.text(0.01, 0.01, note, fontsize=6.5, color="tab:red", va="bottom", ha="left")
        fig.tight_layout(rect=(0, extra / (5.0 + extra), 1, 1))
    else:
        fig.tight_layout()
    return fig


def plot_suite(path: str | Path, settings: TaskSettings, data: Any,
               rows: Sequence[dict[str, Any]], warnings: Sequence[DataWarning] = ()) -> Path:
    """Draw :func:`suite_figure` and write it as a PNG at ``path`` (atomically)."""
    from retrofit.plotting import save_png_atomic

    return save_png_atomic(suite_figure(settings, data, rows, warnings), Path(path))
