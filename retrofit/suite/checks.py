"""When a suite run's data cannot support a result, and what to do about it.

Three cases make a table of "safe" results meaningless, and each gets a :class:`DataWarning`
in the printed table, ``table.md``, ``suite.json`` and ``reward_cost.png``:

- ``dataset-low-reward``: the dataset's best trajectories (the top 10 % by reward) earn little
  normalised reward (mean ≤ ``LITTLE_REWARD``): its behaviour policies never learned the task;
- ``split-no-high-reward-safe``: at a κ, no episode of some seed's ``D_p`` (the safe episodes a
  method imitates, PREFINE §5.1) earns more than ``LITTLE_REWARD``: a policy learned from them
  can be safe only by earning nothing;
- ``reference-no-reward``: π_ref earns no reward (normalised reward ≤ ``NO_REWARD``, mean over
  seeds): "safe" then means "does nothing" and "reward kept vs π_ref" means nothing.

The remedy is a larger collection budget, printed as the exact ``retrofit collect`` command:
the task's registered settings when the data were made with fewer PPO steps than those, else
``LARGER_BUDGET`` × the PPO steps the data were made with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retrofit.errors import DataError
from retrofit.suite.settings import SETTINGS, CollectionSettings, TaskSettings

NO_REWARD = 0.05
"""π_ref with a mean normalised reward at or below this earns none."""
LITTLE_REWARD = 0.1
"""Best trajectories (or best safe episodes) at or below this normalised reward earn little."""
TOP_FRACTION = 0.1
"""The dataset's best trajectories: this share of its episodes, by reward."""
LARGER_BUDGET = 4
"""PPO steps of the suggested collection, × those of the data, when they already had the
task's registered budget."""


@dataclass(frozen=True)
class DataWarning:
    """One reason a suite run's data cannot support a result.

    kind: ``dataset-low-reward``, ``split-no-high-reward-safe`` or ``reference-no-reward``.
    message: what was found (numbers included). remedy: what to do, with the command.
    cost_threshold: the κ it concerns, or None for the whole run.
    """

    kind: str
    message: str
    remedy: str
    cost_threshold: float | None = None


def larger_collection(settings: TaskSettings, data: Any) -> CollectionSettings:
    """A collection budget larger than the one ``data`` was made with (module docstring)."""
    base = SETTINGS[settings.task].collection
    made = (getattr(data, "metadata", None) or {}).get("collect_config") or {}
    steps = (made.get("behaviour") or {}).get("train_steps")
    if steps is None or int(steps) < base.train_steps:
        return base
    return dataclasses.replace(base, train_steps=LARGER_BUDGET * int(steps),
                               episodes=max(base.episodes, int(data.n_episodes)))


def remedy(settings: TaskSettings, data: Any, data_dir: str | Path) -> str:
    """What to do when the data cannot support a result: the ``retrofit collect`` command."""
    collection = larger_collection(settings, data)
    out = Path(data_dir) / settings.name
    return (f"collect with a larger budget ({collection.train_steps} PPO steps per behaviour "
            f"run): `{collection.command(settings.name, str(out))}`, then run `retrofit suite "
            f"{settings.name} --dataset FILE` with the file it writes in {out}.")


def _normalized_rewards(settings: TaskSettings, data: Any) -> tuple[np.ndarray, np.ndarray]:
    from retrofit.tasks import normalized_score

    rewards, costs = data.episode_returns()
    return normalized_score(settings.task, rewards, costs, 1.0)[0], costs


def dataset_warnings(settings: TaskSettings, data: Any, data_dir: str | Path
                     ) -> list[DataWarning]:
    """Warnings about the data alone (before any training): best trajectories, D_p per κ."""
    from retrofit.data.splits import preference_split_indices

    fix = remedy(settings, data, data_dir)
    norm, costs = _normalized_rewards(settings, data)
    found = []
    top = np.sort(norm)[-max(1, int(np.ceil(TOP_FRACTION * norm.size))):]
    if top.mean() <= LITTLE_REWARD:
        found.append(DataWarning(
            "dataset-low-reward",
            f"the dataset's best trajectories earn little: its top {TOP_FRACTION:.0%} episodes "
            f"by reward have mean normalised reward {top.mean():.3f} (≤ {LITTLE_REWARD:g}); its "
            "behaviour policies never learned the task, so no policy trained on it can be "
            "judged on reward.", fix))
    for cost_threshold in settings.cost_thresholds:
        best = []
        for seed in settings.seeds:
            try:
                preferred, _, _ = preference_split_indices(
                    norm, costs, cost_threshold, n_preferred=settings.n_preferred,
                    n_nonpreferred=settings.n_nonpreferred, seed=seed,
                    top_fraction=settings.top_fraction)
            except DataError:  # no split at all: check_dataset's error says so
                continue
            best.append(float(norm[preferred].max()))
        if best and min(best) <= LITTLE_REWARD:
            found.append(DataWarning(
                "split-no-high-reward-safe",
                f"κ={cost_threshold:g}: the split has no high-reward safe episode: the best "
                f"episode of D_p earns normalised reward {min(best):.3f} "
                f"(≤ {LITTLE_REWARD:g}; seeds {list(settings.seeds)}: "
                f"{', '.join(f'{b:.3f}' for b in best)}), so a policy "
                "learned from it is safe only by earning nothing.", fix, cost_threshold))
    return found


def reference_warnings(settings: TaskSettings, rows: Sequence[dict[str, Any]], data: Any,
                       data_dir: str | Path) -> list[DataWarning]:
    """A warning when π_ref (the ``reference`` rows of results.csv) earns no reward."""
    rewards = [float(r["normalized_reward"]) for r in rows if r["method"] == "reference"]
    if not rewards or float(np.mean(rewards)) > NO_REWARD:
        return []
    return [DataWarning(
        "reference-no-reward",
        f"π_ref earns no reward: normalised reward {np.mean(rewards):.3f} (≤ {NO_REWARD:g}, mean "
        "over seeds); a \"safe\" result then means a policy that does nothing, and \"reward "
        "kept vs π_ref\" means nothing.", remedy(settings, data, data_dir))]


def format_warnings(warnings: Sequence[DataWarning]) -> str:
    """The Markdown block of the table: each warning, then the remedy once ('' if none)."""
    if not warnings:
        return ""
    lines = ["**Warning: these data cannot support a result.**", ""]
    lines += [f"- {w.message}" for w in warnings]
    fixes = list(dict.fromkeys(w.remedy for w in warnings))
    lines += ["", "What to do: " + " ".join(fixes)]
    return "\n".join(lines) + "\n"
