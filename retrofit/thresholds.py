"""The episode cost threshold: the one validator every module calls.

The paper writes the threshold κ (PREFINE), τ or L (CPQ); in code, CLI, docs and files it is
``cost_threshold`` (one value) or ``cost_thresholds`` (a sweep), and every place that accepts one
checks it with :func:`check_cost_threshold`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

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
