"""A resumed run logs each step once (issue 22): the metrics logged after the last checkpoint of
an interrupted run are purged on resume, from ``metrics.csv`` and from TensorBoard event files.

Real PREFINE fits of a few steps on the shipped BallRun data; the interruption is a callback
that stops the run three steps after its checkpoint, so those steps are logged twice unless the
resume purges them.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from retrofit import Retrofitter
from retrofit.data.dataset import TrajectoryDataset, action_bounds
from retrofit.data.shipped import default_dataset_path
from retrofit.errors import ConfigError
from retrofit.metrics_log import CSVLogger, TensorBoardLogger
from retrofit.policies.gaussian import TanhGaussianPolicy

STEPS, EVERY, STOP = 10, 4, 7


@pytest.fixture(scope="module")
def pairs() -> tuple:
    data = TrajectoryDataset.from_hdf5(default_dataset_path("OfflineBallRun-v0"))
    return data, data.split_preferences(20.0, n_preferred=20, n_nonpreferred=5, seed=0)


def interrupted_then_resumed(pairs: tuple, folder: Path, log: str) -> None:
    """Stop at step ``STOP`` (checkpoint at ``EVERY``), then resume to ``STEPS``."""
    data, split = pairs
    torch.manual_seed(0)
    policy = TanhGaussianPolicy(data.observation_dim, data.action_dim, *action_bounds(data),
                                hidden_sizes=(8,))
    settings = {"device": "cpu", "progress": False, "log_dir": folder, "log": log,
                "checkpoint_every": EVERY, "batch_size": 8, "steps": STEPS}
    Retrofitter(policy, **settings).fit(*split, callback=lambda step, _: step == STOP,
                                        callback_every=1)
    Retrofitter(policy, **settings).fit(*split, resume=True)


def event_steps(folder: Path, purge: bool) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), purge_orphaned_data=purge)
    events.Reload()
    return [e.step for e in events.Scalars("loss")]


def test_a_resumed_csv_run_logs_each_step_once(pairs: tuple, tmp_path: Path) -> None:
    interrupted_then_resumed(pairs, tmp_path, "csv")
    with (tmp_path / "metrics.csv").open() as fh:
        assert [int(row["step"]) for row in csv.DictReader(fh)] == list(range(1, STEPS + 1))


def test_a_resumed_tensorboard_run_logs_each_step_once(pairs: tuple, tmp_path: Path) -> None:
    interrupted_then_resumed(pairs, tmp_path, "tensorboard")
    # the files themselves, not only TensorBoard's view of them, hold each step once
    assert event_steps(tmp_path, purge=False) == list(range(1, STEPS + 1))
    assert event_steps(tmp_path, purge=True) == list(range(1, STEPS + 1))


def test_a_torn_last_csv_row_is_dropped_on_resume(tmp_path: Path) -> None:
    """kill -9 in the middle of a write leaves half a row: ``13`` of ``1350`` is no step 13."""
    path = tmp_path / "metrics.csv"
    path.write_text("step,loss\n1,0.5\n2,0.4\n3,0.3\n1")
    CSVLogger(path, resume_step=2).close()
    assert path.read_text().splitlines() == ["step,loss", "1,0.5", "2,0.4"]


def test_a_new_tensorboard_run_over_old_events_is_refused_or_replaced(
        tmp_path: Path) -> None:
    first = TensorBoardLogger(tmp_path, flush_every=1)
    for step in (1, 2, 3):
        first.log(step, {"loss": torch.tensor(float(step))})
    first.close()
    with pytest.raises(ConfigError, match="overwrite"):
        TensorBoardLogger(tmp_path)
    second = TensorBoardLogger(tmp_path, flush_every=1, overwrite=True)
    second.log(1, {"loss": torch.tensor(9.0)})
    second.close()
    assert event_steps(tmp_path, purge=False) == [1]
