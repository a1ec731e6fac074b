"""The reference a newcomer gets by default fits without a ``LikelihoodWarning`` (issue 25).

The README Quickstart pretrains π_ref with ``BCConfig(steps=...)`` and fits PREFINE on the
shipped data, where a share of the action components lies exactly on the box bounds. A
tanh-squashed π_ref has an unbounded log-likelihood there (docs/prefine.md), so the default
family is the clipped Gaussian with fixed spread 0.2; the tanh-Gaussian stays an explicit choice.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from retrofit import Retrofitter, TrajectoryDataset
from retrofit.data.dataset import action_bounds, share_on_bounds
from retrofit.errors import LikelihoodWarning
from retrofit.methods.prefine import BOUNDARY_WARNING_SHARE
from retrofit.policies.clipped_gaussian import ClippedGaussianPolicy
from retrofit.pretrain import BCConfig, pretrain_reference
from retrofit.tasks import task_info

SHIPPED = sorted((Path(__file__).resolve().parents[1] / "retrofit" / "data" / "default")
                 .glob("*.hdf5"))


def _quickstart_fit(path: Path, bc: BCConfig) -> list[warnings.WarningMessage]:
    """The Quickstart's steps at a tiny budget; the warnings they gave."""
    data = TrajectoryDataset.from_hdf5(path)
    cost_threshold = task_info(data.task).cost_thresholds[0]
    preferred, nonpreferred = data.split_preferences(
        cost_threshold=cost_threshold, n_preferred=20, n_nonpreferred=10, seed=0)
    on_bounds = share_on_bounds(np.concatenate([preferred.actions, nonpreferred.actions]),
                                *action_bounds(data))
    assert on_bounds >= BOUNDARY_WARNING_SHARE, "the case this guards: actions on the bounds"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reference = pretrain_reference(data, bc, device="cpu", progress=False)
        Retrofitter(reference, method="prefine", device="cpu", progress=False).fit(
            preferred, nonpreferred, steps=2)
    return [w for w in caught if issubclass(w.category, LikelihoodWarning)]


def test_every_shipped_dataset_is_covered():
    assert len(SHIPPED) >= 6, SHIPPED


def test_the_default_reference_is_the_clipped_gaussian_with_spread_0_2():
    config = BCConfig()
    assert (config.policy, config.fixed_std) == ("clipped-gaussian", 0.2)
    reference = pretrain_reference(TrajectoryDataset.from_hdf5(SHIPPED[0]), BCConfig(steps=1),
                                   device="cpu", progress=False)
    assert isinstance(reference, ClippedGaussianPolicy) and reference.fixed_std == 0.2


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_the_quickstart_default_fits_shipped_data_without_a_likelihood_warning(path):
    found = _quickstart_fit(path, BCConfig(steps=5))
    assert not found, [str(w.message)[:80] for w in found]


def test_the_tanh_gaussian_stays_available_and_is_still_warned_about():
    """The explicit choice; its warning also shows the check above can see one."""
    found = _quickstart_fit(SHIPPED[0], BCConfig(steps=5, policy="tanh-gaussian"))
    assert len(found) == 1 and "tanh-squashed" in str(found[0].message)
