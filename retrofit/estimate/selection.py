"""Checkpoint selection on offline estimates: the best estimated reward among the checkpoints
whose estimated cost stays within κ with the stated confidence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from retrofit.errors import ConfigError
from retrofit.estimate.offline import OfflineEstimate
from retrofit.thresholds import check_cost_threshold


def within_limit(cost_upper: float, cost_threshold: float) -> bool:
    """The one definition of "estimated safe": the interval's upper bound ``≤ κ``.

    DSRL's policy-level criterion (:func:`retrofit.thresholds.is_safe_on_average`: mean
    normalised cost ``≤ 1``, i.e. mean cost ``≤ κ``) applied to an estimate of the mean cost, in
    raw units. Not the trajectory rule (``< κ``, one recorded episode).
    """
    return cost_upper <= cost_threshold


@dataclass(frozen=True)
class Selection:
    """The chosen checkpoint: its position in the list, its label, whether its estimated cost's
    upper bound is within κ (``False`` means the fallback was taken) and a sentence saying why."""

    index: int
    name: str
    within_limit: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"index": self.index, "name": self.name, "within_limit": self.within_limit,
                "reason": self.reason}


def select_checkpoint(estimates: Sequence[OfflineEstimate], cost_threshold: float) -> Selection:
    """Pick the checkpoint with the best estimated reward (``reward.estimate``) among those whose
    estimated cost's upper bound (``cost.high``) is ``≤ κ``; if none is, the one with the lowest
    upper bound (and say so).

    Ties go to the earlier checkpoint.
    """
    cost_threshold = check_cost_threshold(cost_threshold)
    if len(estimates) == 0:
        raise ConfigError(
            "checkpoints is empty: there is nothing to select from; pass at least one estimate."
        )
    feasible = [i for i, e in enumerate(estimates) if within_limit(e.cost.high, cost_threshold)]
    conf = f"{100 * estimates[0].cost.confidence:g} %"
    if feasible:
        best = max(feasible, key=lambda i: (estimates[i].reward.estimate, -i))
        e = estimates[best]
        reason = (
            f"{len(feasible)} of {len(estimates)} checkpoints have an estimated cost whose "
            f"{conf} upper bound is ≤ κ = {cost_threshold:g}; {e.name!r} has the best estimated "
            f"reward among them ({e.reward.estimate:.4g}; cost {e.cost.estimate:.4g}, upper bound "
            f"{e.cost.high:.4g})."
        )
        return Selection(best, e.name, True, reason)
    best = min(range(len(estimates)), key=lambda i: (estimates[i].cost.high, i))
    e = estimates[best]
    reason = (
        f"No checkpoint's estimated cost has its {conf} upper bound ≤ κ = {cost_threshold:g}; "
        f"falling back to the lowest upper bound: {e.name!r} (cost {e.cost.estimate:.4g}, upper "
        f"bound {e.cost.high:.4g}). It is not estimated safe."
    )
    return Selection(best, e.name, False, reason)
