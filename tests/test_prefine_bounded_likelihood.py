"""PREFINE on real data with actions on the bounds: the log-likelihoods must stay bounded.

The shipped BallCircle data holds about a third of its action components exactly on the box
bounds (the collector clips noisy actions). With a tanh-Gaussian reference the non-preferred
DPO term drives ``log π(a⁻)`` towards −∞ (issue 14: −151,463 nats); with the clipped-Gaussian
reference (exact atoms at the bounds, spread bounded below) it must stay above −1000 nats.
"""

import numpy as np
import pytest
import torch

from retrofit.adapters import wrap
from retrofit.data.dataset import TrajectoryDataset
from retrofit.demo import default_dataset_path
from retrofit.methods.prefine import PrefineConfig, PrefineTrainer
from retrofit.pretrain import BCConfig, pretrain_reference

TASK = "OfflineBallCircle-v0"
BOUND = 1000.0


class _MinLogger:
    def __init__(self) -> None:
        self.low = np.inf
        self.high = -np.inf

    def log(self, step: int, metrics: dict[str, torch.Tensor]) -> None:
        for key in ("logps/dataset_preferred", "logps/dataset_nonpreferred"):
            value = float(metrics[key])
            self.low, self.high = min(self.low, value), max(self.high, value)

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def data():
    dataset = TrajectoryDataset.from_hdf5(default_dataset_path(TASK), task=TASK)
    low, high = np.full(2, -1.0, np.float32), np.full(2, 1.0, np.float32)
    on_bound = np.mean((dataset.actions <= low) | (dataset.actions >= high))
    assert on_bound > 0.2  # the premise: many action components sit exactly on the bounds
    preferred, nonpreferred = dataset.split_preferences(cost_threshold=20.0, seed=0)
    return dataset, preferred, nonpreferred, low, high


def _min_max_logp(data, policy: str, bc_steps: int = 1000, steps: int = 300):
    dataset, preferred, nonpreferred, low, high = data
    # the learned spread (bounded below by min_std), not BCConfig's default fixed 0.2
    config = BCConfig(steps=bc_steps, hidden_sizes=(64, 64), policy=policy, fixed_std=None)
    reference = pretrain_reference(dataset, config, action_low=low, action_high=high,
                                   device="cpu", seed=0, progress=False)
    trainer = PrefineTrainer(
        wrap(reference), PrefineConfig(steps=steps, batch_size=128).resolved("bullet"),
        device="cpu", seed=0,
    )
    log = _MinLogger()
    trainer.fit(preferred, nonpreferred, logger=log, progress=False)
    return log.low, log.high


def test_clipped_gaussian_log_likelihood_stays_bounded_on_real_boundary_data(data):
    low, high = _min_max_logp(data, "clipped-gaussian")
    assert low > -BOUND, f"log π(a) fell to {low:.1f} nats"
    assert np.isfinite(high)
