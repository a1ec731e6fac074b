"""The per-run safety report: estimate every checkpoint offline, pick one, write what was found.

``safety_report.json`` holds every estimate and the choice; ``safety_report.md`` is a short page
with a table and ``safety_report.png`` (estimated cost with its interval against κ, and
estimated reward, along training). Every file is written atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from retrofit.atomic import atomic_write, atomic_write_text
from retrofit.estimate.config import FQEConfig
from retrofit.estimate.offline import OfflineEstimate, estimate_policies
from retrofit.estimate.selection import Selection, select_checkpoint, within_limit
from retrofit.thresholds import check_cost_threshold

JSON_NAME = "safety_report.json"
MARKDOWN_NAME = "safety_report.md"
FIGURE_NAME = "safety_report.png"


@dataclass(frozen=True)
class SafetyReport:
    """The estimates (checkpoint order), the selection and the files written."""

    estimates: list[OfflineEstimate]
    selection: Selection
    cost_threshold: float
    paths: dict[str, Path]


def safety_report(
    checkpoints: Mapping[str, Any] | Sequence[Any],
    dataset: Any,
    cost_threshold: float,
    out_dir: str | os.PathLike[str],
    config: FQEConfig | None = None,
    device: str | torch.device = "auto",
) -> SafetyReport:
    """Estimate each checkpoint offline, select one and write the safety report into ``out_dir``.

    Args:
        checkpoints: label -> policy in training order (e.g. ``{"step 500": p1, ...}``), or a
            list of policies.
        dataset: the training data with per-step costs (a ``TrajectoryDataset``).
        cost_threshold: κ, the episode cost limit.
        out_dir: folder for ``safety_report.json``, ``.md`` and ``.png`` (created).
        config: :class:`FQEConfig`; its ``confidence`` is the one the selection states.
        device: where FQE trains (``"auto"``: CUDA when available).
    """
    cost_threshold = check_cost_threshold(cost_threshold)
    config = config or FQEConfig()
    estimates = estimate_policies(checkpoints, dataset, config, device)
    selection = select_checkpoint(estimates, cost_threshold)
    extra = {"task": getattr(dataset, "task", None), "config": config.to_dict(),
             "dataset": {"n_episodes": int(dataset.n_episodes), "n_transitions": len(dataset)}}
    paths = write_safety_report(out_dir, estimates, selection, cost_threshold, extra)
    return SafetyReport(estimates, selection, cost_threshold, paths)


def write_safety_report(
    out_dir: str | os.PathLike[str],
    estimates: Sequence[OfflineEstimate],
    selection: Selection,
    cost_threshold: float,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write ``safety_report.json``, ``.md`` and ``.png`` for given estimates and selection.

    ``extra`` (JSON-able: task, config, dataset size, ...) is stored in the JSON as it is.
    Returns the paths by kind (``json``, ``markdown``, ``figure``).
    """
    import retrofit

    cost_threshold = check_cost_threshold(cost_threshold)
    out = Path(out_dir)
    payload = {
        "retrofit_version": retrofit.__version__,
        "cost_threshold": cost_threshold,
        "rule": "best estimated reward among checkpoints whose estimated cost upper bound <= "
                "cost_threshold; else the lowest upper bound",
        "selection": selection.to_dict(),
        "checkpoints": [
            {**e.to_dict(), "within_limit": within_limit(e.cost.high, cost_threshold)}
            for e in estimates
        ],
        **dict(extra or {}),
    }
    paths = {
        "json": atomic_write_text(out / JSON_NAME, json.dumps(payload, indent=2) + "\n"),
        "figure": plot_safety_estimates(out / FIGURE_NAME, estimates, selection, cost_threshold),
    }
    paths["markdown"] = atomic_write_text(
        out / MARKDOWN_NAME, _markdown(estimates, selection, cost_threshold, extra or {})
    )
    return paths


def plot_safety_estimates(
    path: str | os.PathLike[str],
    estimates: Sequence[OfflineEstimate],
    selection: Selection,
    cost_threshold: float,
) -> Path:
    """Estimated cost (mean and interval) against κ, and estimated reward, per checkpoint."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    x = list(range(len(estimates)))
    fig = Figure(figsize=(6.4, 5.0), dpi=150)
    FigureCanvasAgg(fig)
    ax_cost, ax_reward = fig.subplots(2, 1, sharex=True)
    for ax, field, color in ((ax_cost, "cost", "tab:red"), (ax_reward, "reward", "tab:blue")):
        values = [getattr(e, field) for e in estimates]
        mean = [v.estimate for v in values]
        err = [[max(v.estimate - v.low, 0.0) for v in values],
               [max(v.high - v.estimate, 0.0) for v in values]]
        ax.errorbar(x, mean, yerr=err, fmt="o-", color=color, capsize=3, linewidth=1.2,
                    label=f"estimated {field} ({100 * values[0].confidence:g} % interval)")
        ax.scatter([selection.index], [mean[selection.index]], s=160, marker="*",
                   color="gold", edgecolors="black", zorder=5, label="selected")
        ax.set_ylabel(f"episode {field}")
        ax.grid(alpha=0.3)
    ax_cost.axhline(cost_threshold, color="black", linestyle="--", linewidth=1.0,
                    label=f"κ = {cost_threshold:g}")
    ax_cost.legend(loc="best", fontsize=8, framealpha=0.85)
    ax_reward.set_xticks(x, [e.name for e in estimates], rotation=30, ha="right", fontsize=8)
    ax_reward.set_xlabel("checkpoint")
    fig.tight_layout()
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))


def _markdown(
    estimates: Sequence[OfflineEstimate], selection: Selection, cost_threshold: float,
    extra: Mapping[str, Any],
) -> str:
    conf = f"{100 * estimates[0].cost.confidence:g} %"
    task = extra.get("task")
    lines = [
        f"# Safety report{f' — {task}' if task else ''}",
        "",
        f"Cost limit κ = {cost_threshold:g}. Offline estimate: finite-horizon fitted Q evaluation "
        f"on the training data, {len(estimates[0].cost.samples)} bootstrap resamples of its "
        f"episodes, {conf} central intervals (docs/offline-estimate.md).",
        "",
        f"**Selected: {selection.name}.** {selection.reason}",
        "",
        f"| checkpoint | estimated cost [{conf}] | estimated reward [{conf}] | upper bound ≤ κ "
        "| action shift |",
        "|---|---|---|---|---|",
    ]
    for i, e in enumerate(estimates):
        mark = " (selected)" if i == selection.index else ""
        ok = "yes" if within_limit(e.cost.high, cost_threshold) else "no"
        lines.append(
            f"| {e.name}{mark} | {e.cost.estimate:.4g} [{e.cost.low:.4g}, {e.cost.high:.4g}] | "
            f"{e.reward.estimate:.4g} [{e.reward.low:.4g}, {e.reward.high:.4g}] | {ok} | "
            f"{e.action_shift:.3g} |"
        )
    lines += [
        "",
        f"![estimated cost and reward along training]({FIGURE_NAME})",
        "",
        "The interval covers the sampling error of the data (which episodes were collected), not "
        "the error of extrapolating to actions the data never took: an action shift well above "
        "1 (behaviour standard deviations) means the estimate rests on such extrapolation. "
        "Confirm the selected checkpoint in rollouts before deploying it where that is possible.",
        "",
    ]
    return "\n".join(lines)
