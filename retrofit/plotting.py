"""Figures a person can open: reward-vs-cost scatter of episode returns (PREFINE Figure 1, right)
and learning curves of normalised reward, cost and the Lagrange multiplier ν (PreSa Figures 6-9).

matplotlib is imported only when a figure is drawn, through its object-oriented API with the Agg
canvas: no pyplot, no change to the caller's backend. PNGs are written atomically (temp file in
the target folder, then ``os.replace``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retrofit.atomic import atomic_write
from retrofit.errors import DataError

Returns = tuple[Sequence[float] | np.ndarray, Sequence[float] | np.ndarray]

# first group: the reference policy (black); second: the retrofitted one (blue); then tab10
_GROUP_COLORS = ("black", "tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple",
                 "tab:brown", "tab:pink", "tab:olive", "tab:cyan")


def plot_reward_cost(
    path: str | os.PathLike[str],
    dataset_returns: Returns | None,
    groups: Mapping[str, Returns | Any],
    cost_threshold: float,
    title: str | None = None,
    colors: Mapping[str, str] | None = None,
) -> Path:
    """Scatter episode reward return against cost return and save it as a PNG at ``path``.

    Like PREFINE's Figure 1 (right): the dataset's trajectories in grey, then one colour per
    group of rollouts (``groups`` in order: the first black, for the reference policy; the second
    blue, for the retrofitted one; further groups in matplotlib's tab10 colours), each group's
    mean as a large outlined marker, and a dashed vertical line at ``cost_threshold``. Axes are
    raw (un-normalised) returns: cost on x, reward on y.

    Args:
        path: output PNG; its folder is created if missing; an existing file is replaced.
        dataset_returns: ``(rewards, costs)`` per dataset trajectory, or ``None``.
        groups: name -> ``(rewards, costs)`` per episode, or an ``EvaluationResult``.
        cost_threshold: κ, drawn as the vertical line.
        title: figure title (default: none).
        colors: optional name -> matplotlib colour overrides for groups.

    Returns:
        The path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    colors = dict(colors or {})
    fig = Figure(figsize=(5.5, 4.2), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if dataset_returns is not None:
        rewards, costs = _returns("dataset_returns", dataset_returns)
        ax.scatter(costs, rewards, s=6, c="0.7", alpha=0.6, linewidths=0, label="dataset",
                   zorder=1)
    for i, (name, value) in enumerate(groups.items()):
        rewards, costs = _returns(f"groups[{name!r}]", value)
        color = colors.get(name, _GROUP_COLORS[i % len(_GROUP_COLORS)])
        ax.scatter(costs, rewards, s=14, color=color, alpha=0.7, linewidths=0, zorder=2 + i)
        ax.scatter([np.mean(costs)], [np.mean(rewards)], s=110, color=color, edgecolors="white",
                   linewidths=1.5, marker="o", label=name, zorder=20 + i)
    ax.axvline(cost_threshold, color="tab:red", linestyle="--", linewidth=1.2,
               label=f"cost threshold {cost_threshold:g}", zorder=30)
    ax.set_xlabel("cost return")
    ax.set_ylabel("reward return")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8, framealpha=0.85)
    fig.tight_layout()
    return _save_png_atomic(fig, Path(path))


def plot_learning_curve(
    path: str | os.PathLike[str],
    rows: Sequence[Mapping[str, Any]],
    reference: tuple[float, float] | None = None,
    title: str | None = None,
) -> Path:
    """Normalised reward, normalised cost and ν against training steps, one line per seed.

    Args:
        path: output PNG (folder created, existing file replaced, written atomically).
        rows: checkpoint rows with ``seed``, ``step``, ``normalized_reward``, ``normalized_cost``
            and optionally ``nu`` (``benchmarks/presa_table.py``'s ``_curve.csv``); one method.
        reference: π_ref's ``(normalised reward, normalised cost)``, drawn as dotted lines.
        title: figure title (default: none).

    The cost panel marks the safety limit (normalised cost 1) with a dashed red line.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    series: dict[str, list[tuple[float, float, float, float]]] = {}
    for i, row in enumerate(rows):
        try:
            point = tuple(float(row[k]) for k in ("step", "normalized_reward", "normalized_cost"))
            nu = float(row["nu"]) if row.get("nu") not in (None, "") else float("nan")
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(
                f"rows[{i}] needs numeric step, normalized_reward and normalized_cost "
                f"(and optionally nu): {exc!r}."
            ) from None
        if not all(np.isfinite(point)):
            raise DataError(f"rows[{i}] has a NaN or inf step, reward or cost: {dict(row)}.")
        series.setdefault(str(row.get("seed", "")), []).append((*point, nu))
    if not series:
        raise DataError("rows is empty: there is no checkpoint to plot.")
    fig = Figure(figsize=(11, 3.4), dpi=150)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, 3, k + 1) for k in range(3)]
    labels = ("normalised reward", "normalised cost", "ν (Lagrange multiplier)")
    for i, (seed, points) in enumerate(sorted(series.items())):
        data = np.array(sorted(points))
        color = _GROUP_COLORS[(i + 1) % len(_GROUP_COLORS)]
        for k, ax in enumerate(axes):
            ax.plot(data[:, 0], data[:, k + 1], marker="o", markersize=3, color=color,
                    label=f"seed {seed}")
    if reference is not None:
        for k in (0, 1):
            axes[k].axhline(reference[k], color="black", linestyle=":", linewidth=1.2,
                            label="π_ref")
    axes[1].axhline(1.0, color="tab:red", linestyle="--", linewidth=1.2, label="safe ≤ 1")
    for ax, label in zip(axes, labels, strict=True):
        ax.set_xlabel("training steps")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[1].legend(loc="best", fontsize=7, framealpha=0.85)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save_png_atomic(fig, Path(path))


def _returns(field: str, value: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(rewards, costs)`` as equal-length finite float arrays, or raise ``DataError``."""
    if hasattr(value, "rewards") and hasattr(value, "costs"):
        value = (value.rewards, value.costs)
    try:
        rewards, costs = value
    except (TypeError, ValueError):
        raise DataError(
            f"{field} must be a (rewards, costs) pair or an EvaluationResult; got "
            f"{type(value).__name__}."
        ) from None
    rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
    costs = np.asarray(costs, dtype=np.float64).reshape(-1)
    if rewards.shape != costs.shape or rewards.size == 0:
        raise DataError(
            f"{field}: rewards has {rewards.size} values and costs {costs.size}; they must be "
            "equal and non-zero (one reward and one cost return per episode)."
        )
    if not (np.all(np.isfinite(rewards)) and np.all(np.isfinite(costs))):
        raise DataError(f"{field} contains NaN or inf; drop those episodes before plotting.")
    return rewards, costs


def _save_png_atomic(fig: Any, path: Path) -> Path:
    """Write ``fig`` to a temp file next to ``path`` and rename it into place."""
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))


def plot_training_metrics(
    path: str | os.PathLike[str], metrics_csv: str | os.PathLike[str], max_panels: int = 8,
    title: str | None = None,
) -> Path:
    """Learning curves of a fit: each ``loss``/``loss/...`` column of ``metrics.csv`` (then the
    other columns, up to ``max_panels``) against the step, one panel each.

    Empty cells (a metric of another stage) and NaN values are not drawn; the data are read
    as written, nothing is smoothed.
    """
    import csv

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with open(metrics_csv, newline="") as fh:
        rows = list(csv.reader(fh))
    if len(rows) < 2 or not rows[0] or rows[0][0] != "step":
        raise DataError(f"{metrics_csv} has no metric rows (a 'step' header and values).")
    header, body = rows[0], rows[1:]
    names = [h for h in header[1:] if h == "loss" or h.startswith("loss/")]
    names += [h for h in header[1:] if h not in names]
    names = names[:max_panels]
    steps = np.array([float(r[0]) for r in body])
    cols = max(1, min(4, len(names)))
    nrows = (len(names) + cols - 1) // cols
    fig = Figure(figsize=(3.2 * cols, 2.4 * nrows), dpi=120)
    FigureCanvasAgg(fig)
    for i, name in enumerate(names):
        j = header.index(name)
        values = np.array([float(r[j]) if j < len(r) and r[j] != "" else np.nan for r in body])
        ax = fig.add_subplot(nrows, cols, i + 1)
        ok = np.isfinite(values)
        ax.plot(steps[ok], values[ok], lw=0.8)
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save_png_atomic(fig, Path(path))
