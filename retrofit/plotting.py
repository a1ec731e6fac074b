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
    return save_png_atomic(fig, Path(path))


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
    return save_png_atomic(fig, Path(path))


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


def save_png_atomic(fig: Any, path: Path, dpi: float | None = None) -> Path:
    """Write ``fig`` as a PNG to a temp file next to ``path`` and rename it into place."""
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))


def mark_thresholds(ax: Any, cost_thresholds: Sequence[float] = (), color: str = "grey",
                    fontsize: float = 8, *, thresholds: Sequence[float] | None = None
                    ) -> list[Any]:
    """Dashed vertical lines at the cost thresholds κ, each labelled ``κ=…`` at the top.

    Each label sits on its own row (the first at the top, the next 1.6 font heights lower), so
    labels of thresholds close together on the axis (κ = 10, 20 on a 0–90 cost axis) never
    overlap. Returns the label ``Text`` objects. ``thresholds=`` is the deprecated name of
    ``cost_thresholds``.
    """
    if thresholds is not None:
        import warnings

        warnings.warn("mark_thresholds(thresholds=...) is now cost_thresholds=...",
                      DeprecationWarning, stacklevel=2)
        cost_thresholds = thresholds
    from matplotlib.transforms import blended_transform_factory

    transform = blended_transform_factory(ax.transData, ax.transAxes)
    box = ax.get_position()
    height_pt = max(box.height * ax.figure.get_figheight() * 72.0, 1.0)
    step = 1.6 * fontsize / height_pt
    labels = []
    for row, cost_threshold in enumerate(cost_thresholds):
        ax.axvline(cost_threshold, color=color, linestyle="--", linewidth=0.8)
        labels.append(ax.text(cost_threshold, 0.99 - row * step, f" κ={cost_threshold:g}", va="top",
                              fontsize=fontsize, color=color, transform=transform))
    return labels


METRIC_GROUPS = ("loss", "logps/", "rewards/")
"""Panel order of the training-metric curves: losses, then log-likelihoods (``logps/*``), then
implicit rewards (``rewards/*``), then every other metric in the order it was logged."""


def read_metrics(source: str | os.PathLike[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Steps and per-metric values (NaN where a step lacks the metric) of a fit's log.

    ``source``: a ``metrics.csv`` (``--log csv``) or a folder of TensorBoard event files
    (``--log tensorboard``, read with tensorboard's ``EventAccumulator``).
    """
    source = Path(source)
    if source.is_dir():
        return _read_event_files(source)
    import csv

    with open(source, newline="") as fh:
        rows = list(csv.reader(fh))
    if len(rows) < 2 or not rows[0] or rows[0][0] != "step":
        raise DataError(f"{source} has no metric rows (a 'step' header and values).")
    header, body = rows[0], rows[1:]
    steps = np.array([float(r[0]) for r in body])
    values = {name: np.array([float(r[j]) if j < len(r) and r[j] != "" else np.nan
                              for r in body]) for j, name in enumerate(header) if j > 0}
    return steps, values


def _read_event_files(folder: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError as exc:
        raise DataError(f"{folder}: reading TensorBoard event files needs the tensorboard "
                        "package (pip install tensorboard).") from exc
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    tags = events.Tags().get("scalars", [])
    if not tags:
        raise DataError(f"{folder} has no TensorBoard scalars (no event file with metrics).")
    series = {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in tags}
    steps = np.array(sorted({step for points in series.values() for step in points}), float)
    values = {tag: np.array([points.get(int(step), np.nan) for step in steps])
              for tag, points in series.items()}
    return steps, values


def metric_panels(names: Sequence[str]) -> list[str]:
    """The metrics to draw, in panel order (:data:`METRIC_GROUPS`): every name, none dropped."""
    def group(name: str) -> int:
        for i, prefix in enumerate(METRIC_GROUPS):
            if name == prefix.rstrip("/") or name.startswith(prefix.rstrip("/") + "/"):
                return i
        return len(METRIC_GROUPS)

    return sorted(names, key=group)  # stable: logged order within a group


def training_metrics_figure(source: str | os.PathLike[str], max_panels: int | None = None,
                            title: str | None = None) -> Any:
    """The learning-curve ``Figure`` of :func:`plot_training_metrics` (nothing is written)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps, values = read_metrics(source)
    names = metric_panels(list(values))[:max_panels]
    cols = max(1, min(4, len(names)))
    nrows = (len(names) + cols - 1) // cols
    fig = Figure(figsize=(3.2 * cols, 2.5 * nrows), dpi=120)
    FigureCanvasAgg(fig)
    for i, name in enumerate(names):
        ax = fig.add_subplot(nrows, cols, i + 1)
        ok = np.isfinite(values[name])
        ax.plot(steps[ok], values[name][ok], lw=0.8)
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("training step", fontsize=7)
        ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_training_metrics(
    path: str | os.PathLike[str], metrics_csv: str | os.PathLike[str],
    max_panels: int | None = None, title: str | None = None,
) -> Path:
    """Learning curves of a fit, one panel per metric against the training step, as a PNG.

    ``metrics_csv``: the fit's ``metrics.csv`` or its TensorBoard log folder
    (:func:`read_metrics`). Every metric gets a panel (or the first ``max_panels``): losses
    first, then the log-likelihoods ``logps/*``, the implicit rewards ``rewards/*`` and the
    rest. Empty cells (a metric of another stage) and NaN values are not drawn; the data are
    drawn as written, nothing is smoothed.
    """
    return save_png_atomic(training_metrics_figure(metrics_csv, max_panels, title), Path(path))
