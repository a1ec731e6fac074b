"""One rule for a spread used as a divisor: a (near-)constant feature is left unscaled.

Observation standardisation (every policy and method that standardises inputs), FQE's inputs and
the action-shift statistic divide by a per-dimension standard deviation; a dimension that never
varies in the data would divide by ~0, so a std below ``SCALE_FLOOR`` counts as 1.
"""

from __future__ import annotations

import numpy as np

SCALE_FLOOR = 1e-6
"""Standard deviations below this are treated as 1 (the feature is constant in the data)."""


def safe_scale(std: np.ndarray | list[float]) -> np.ndarray:
    """``std`` with every entry below :data:`SCALE_FLOOR` replaced by 1 (a new array)."""
    values = np.asarray(std)
    return np.where(values < SCALE_FLOOR, 1.0, values)
