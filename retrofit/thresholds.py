"""The episode cost threshold: its one validator and the two meanings of "safe" it defines.

The paper writes the threshold κ (PREFINE), τ or L (CPQ); in code, CLI, docs and files it is
``cost_threshold`` (one value) or ``cost_thresholds`` (a sweep), and every place that accepts one
checks it with :func:`check_cost_threshold`.

Two criteria use κ and are kept apart by name (docs/evaluation.md, "Safe: a trajectory, a
policy"):

- :func:`is_safe_trajectory` — one recorded trajectory (or segment) is safe when its cost
  return is *strictly below* κ (PREFINE §3 and §5.1). Splits, BC-Safe's filters, synthetic
  feedback labels, CDT's target return and the dataset statistics all call it.
- :func:`is_safe_on_average` — a policy is safe when its *mean* normalised cost is at most 1,
  i.e. its mean episode cost is ``≤ κ`` (DSRL, Liu et al. 2023, §4). Evaluation, comparison and
  suite reports call it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from retrofit.errors import ConfigError, RetrofitError


def check_cost_threshold(value: Any, field: str = "cost_threshold",
                         error: type[RetrofitError] = ConfigError) -> float:
    """Return the cost threshold ``value`` as a float; raise ``error`` unless finite and >= 0.

    ``field`` names the option in the message (``cost_thresholds`` for one value of a sweep).
    ``True``/``False``, strings and NaN are refused rather than cast (``True`` is not κ = 1).
    """
    if isinstance(value, bool | np.bool_) or not isinstance(
        value, int | float | np.integer | np.floating
    ):
        raise error(
            f"{field}={value!r} ({type(value).__name__}) must be a real number, "
            "the episode cost limit κ, e.g. 10 or 20.0."
        )
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise error(
            f"{field}={value!r} must be a finite number >= 0 (the episode cost limit κ), "
            "e.g. 10 or 20.0."
        )
    return number


def is_safe_trajectory(cost_return: ArrayLike, cost_threshold: float) -> np.ndarray | np.bool_:
    """Whether each trajectory with cost return ``cost_return`` is safe at ``cost_threshold``.

    Safe means ``cost_return < cost_threshold``; a cost return of exactly κ is unsafe. PREFINE
    §3: "A trajectory is considered safe enough if its cumulative cost lies below τ"; §5.1,
    dataset construction: "SAFE = {τ_i | cumulative_cost(τ_i) < τ}", UNSAFE the rest (``≥ τ``).
    A segment is judged the same way against its rescaled threshold
    (:func:`retrofit.feedback.synthesis.segment_threshold`).

    Works elementwise on an array of cost returns and returns a boolean array of its shape
    (a 0-d ``np.bool_`` for one number). ``cost_threshold`` is not validated here: every entry
    point checks it with :func:`check_cost_threshold` first.
    """
    return np.asarray(cost_return, dtype=np.float64) < float(cost_threshold)


def is_safe_on_average(normalized_cost: ArrayLike) -> np.ndarray | np.bool_:
    """Whether a policy with mean normalised cost ``normalized_cost`` is safe: ``≤ 1``.

    DSRL's policy-level criterion (Liu et al. 2023, §4; :func:`retrofit.tasks.normalized_score`):
    the normalised cost ``(C + ε) / (κ + ε)`` of the *mean* episode cost ``C`` is at most 1, i.e.
    ``C ≤ κ``. It is about a policy's average over episodes, not one trajectory; a single
    trajectory is judged by :func:`is_safe_trajectory`. Elementwise; a 0-d ``np.bool_`` for one
    number (wrap in ``bool(...)`` for JSON).
    """
    return np.asarray(normalized_cost, dtype=np.float64) <= 1.0
