"""``retrofit suite`` says when its data cannot support a result (issue 25): best trajectories
that earn little, a split without high-reward safe episodes, a π_ref that earns nothing — in
the printed table, table.md, suite.json and reward_cost.png, with the ``retrofit collect``
command of a larger budget; and every task's settings say whether its collection was tried."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from retrofit.cli import app
from retrofit.data.dataset import TrajectoryDataset
from retrofit.data.shipped import default_dataset_path
from retrofit.suite.checks import (
    dataset_warnings,
    format_warnings,
    larger_collection,
    reference_warnings,
)
from retrofit.suite.figure import suite_figure
from retrofit.suite.runner import format_table, summarize_rows
from retrofit.suite.settings import SETTINGS, settings_for
from retrofit.tasks import normalized_score


@pytest.fixture
def no_dsrl_files(tmp_path, monkeypatch):
    """An empty DSRL data folder, so a user's own ~/.dsrl files do not change the lookup."""
    folder = tmp_path / "dsrl"
    folder.mkdir()
    monkeypatch.setenv("DSRL_DATASET_DIR", str(folder))
    return folder


@pytest.fixture(scope="module")
def ballrun():
    return TrajectoryDataset.from_hdf5(default_dataset_path("OfflineBallRun-v0"))


@pytest.fixture(scope="module")
def weak_ballrun(ballrun):
    """BallRun's shipped episodes whose normalised reward is below 0.08: data of behaviour
    policies that never learned the task (134 safe and 6 unsafe episodes at κ = 10)."""
    rewards, costs = ballrun.episode_returns()
    norm = normalized_score(ballrun.task, rewards, costs, 1.0)[0]
    return ballrun.select_episodes(np.flatnonzero(norm < 0.08))


def test_every_tasks_settings_say_whether_its_collection_was_tried():
    for settings in SETTINGS.values():
        assert settings.outcome, f"{settings.name} has no outcome note"
        assert settings.outcome in settings.summary()
    drone = settings_for("DroneCircle").outcome
    assert "tried" in drone and "−0.243" in drone and "never learned" in drone
    assert "never collected" in settings_for("CarGoal2").outcome
    result = CliRunner().invoke(app, ["tasks"])
    assert result.exit_code == 0 and "outcome: tried (issue 25)" in result.output


def test_shipped_data_that_support_a_result_get_no_warning(ballrun, tmp_path):
    assert dataset_warnings(settings_for("BallRun"), ballrun, tmp_path) == []
    carcircle = TrajectoryDataset.from_hdf5(default_dataset_path("OfflineCarCircle-v0"))
    assert dataset_warnings(settings_for("CarCircle"), carcircle, tmp_path) == []


def test_weak_data_warn_with_the_command_of_a_larger_budget(weak_ballrun, tmp_path):
    settings = settings_for("BallRun").override(n_preferred=20, n_nonpreferred=5,
                                                cost_thresholds=(10, 20))
    found = dataset_warnings(settings, weak_ballrun, tmp_path)
    assert [w.kind for w in found] == ["dataset-low-reward", *["split-no-high-reward-safe"] * 2]
    assert [w.cost_threshold for w in found] == [None, 10.0, 20.0]
    larger = larger_collection(settings, weak_ballrun)  # made with the preset's 60k steps
    assert larger.train_steps == 4 * 60_000 and larger.episodes == 972
    command = larger.command("BallRun", str(tmp_path / "BallRun"))
    assert command.startswith("retrofit collect BallRun --out ")
    assert all(command in w.remedy for w in found)
    block = format_warnings(found)
    assert block.count(command) == 1 and "cannot support a result" in block


def test_smoke_sized_data_suggest_the_tasks_own_settings(weak_ballrun, tmp_path):
    smoke = TrajectoryDataset.from_arrays(weak_ballrun.to_dict(), task=weak_ballrun.task,
                                          metadata={"collect_config": {"behaviour": {
                                              "train_steps": 64}}})
    assert larger_collection(settings_for("BallRun"), smoke) == SETTINGS[smoke.task].collection


def test_reference_that_earns_nothing_is_warned_in_the_table(ballrun, tmp_path):
    settings = settings_for("BallRun").override(seeds=(0, 1), cost_thresholds=(20,))
    rows = [{"method": "reference", "cost_threshold": 20.0, "seed": s,
             "normalized_reward": r, "normalized_cost": 0.1} for s, r in ((0, -0.24), (1, 0.1))]
    rows += [{**r, "method": "prefine"} for r in rows]
    found = reference_warnings(settings, rows, ballrun, tmp_path)
    assert [w.kind for w in found] == ["reference-no-reward"]
    assert "π_ref earns no reward: normalised reward -0.070" in found[0].message
    table = format_table(summarize_rows(rows), settings, found)
    assert "| prefine | 20 |" in table and "π_ref earns no reward" in table
    assert "retrofit collect BallRun" in table
    good = [{**r, "normalized_reward": 0.3} for r in rows]
    assert reference_warnings(settings, good, ballrun, tmp_path) == []


def test_suite_on_weak_data_says_so_everywhere(weak_ballrun, tmp_path, no_dsrl_files):
    path = weak_ballrun.to_hdf5(tmp_path / "weak.hdf5")
    out = tmp_path / "out"
    args = ["suite", "BallRun", "--dataset", str(path), "--out", str(out), "--data-dir",
            str(tmp_path / "data"), "--methods", "prefine", "--seeds", "0", "--thresholds",
            "10", "--bc-steps", "10", "--steps", "5", "--episodes", "1", "--n-preferred", "20",
            "--n-nonpreferred", "5", "--in-process", "--quiet", "--device", "cpu"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    command = larger_collection(settings_for("BallRun"), weak_ballrun).command(
        "BallRun", str(tmp_path / "data" / "BallRun"))
    assert "WARNING the dataset's best trajectories earn little" in result.output
    table = (out / "table.md").read_text()
    assert table in result.output
    assert "cannot support a result" in table and command in table
    assert "κ=10: the split has no high-reward safe episode" in table
    report = json.loads((out / "suite.json").read_text())
    kinds = {w["kind"] for w in report["warnings"]}
    assert {"dataset-low-reward", "split-no-high-reward-safe"} <= kinds
    assert all(command in w["remedy"] for w in report["warnings"])
    assert (out / "reward_cost.png").stat().st_size > 10_000

    with open(out / "results.csv") as fh:
        import csv

        rows = list(csv.DictReader(fh))
    settings = settings_for("BallRun").override(seeds=(0,), cost_thresholds=(10,))
    from retrofit.suite.checks import DataWarning

    warnings = [DataWarning(**w) for w in report["warnings"]]
    fig = suite_figure(settings, weak_ballrun, rows, warnings)
    ax = fig.axes[0]
    cloud = ax.collections[0]
    assert len(cloud.get_offsets()) == weak_ballrun.n_episodes  # the dataset's cloud
    texts = " ".join(t.get_text() for t in fig.texts)
    assert "best trajectories earn little" in texts and "retrofit collect BallRun" in texts
    assert ax.get_xlabel() and ax.get_ylabel()
