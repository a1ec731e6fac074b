"""The one cost-threshold validator and the deprecated names that lead to it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from retrofit.errors import ConfigError, DataError
from retrofit.thresholds import check_cost_threshold


@pytest.mark.parametrize("value", [0, 10, 20.0, np.float32(40), np.int64(5)])
def test_accepts_finite_non_negative_numbers(value: object) -> None:
    assert check_cost_threshold(value) == float(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [True, "10", None, math.nan, math.inf, -1.0])
def test_refuses_the_rest_naming_the_field(value: object) -> None:
    with pytest.raises(DataError, match=r"^cost_thresholds="):
        check_cost_threshold(value, "cost_thresholds", error=DataError)


def test_every_config_refuses_nan_the_same_way() -> None:
    from retrofit.methods.bc import BCAllConfig
    from retrofit.methods.cpq import CPQConfig

    for config in (BCAllConfig, CPQConfig):
        with pytest.raises(ConfigError, match="cost_threshold=nan must be a finite number"):
            config(cost_threshold=math.nan)


def test_mark_thresholds_old_keyword_warns() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from retrofit.plotting import mark_thresholds

    fig, ax = plt.subplots()
    with pytest.warns(DeprecationWarning, match="cost_thresholds"):
        labels = mark_thresholds(ax, thresholds=(10.0, 20.0))
    assert [t.get_text() for t in labels] == [" κ=10", " κ=20"]
    plt.close(fig)
