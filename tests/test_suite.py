"""``retrofit suite``: the per-task settings table, the runner's data lookup and errors, and real
end-to-end runs (the shipped BallRun file here; every task at smoke size in the slow test)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from retrofit.cli import app
from retrofit.compare import RESULT_COLUMNS
from retrofit.data.dataset import TrajectoryDataset
from retrofit.data.shipped import SHIPPED_DATASETS, default_dataset_path
from retrofit.errors import ConfigError, DataError, EnvironmentError_
from retrofit.suite.runner import (
    collect_data,
    find_data,
    run_suite,
    shipped_dir,
    suite_settings,
)
from retrofit.suite.settings import SETTINGS, settings_for
from retrofit.tasks import TASKS, task_info


@pytest.fixture
def no_dsrl_files(tmp_path, monkeypatch):
    """An empty DSRL data folder, so a user's own ~/.dsrl files do not change the lookup."""
    folder = tmp_path / "dsrl"
    folder.mkdir()
    monkeypatch.setenv("DSRL_DATASET_DIR", str(folder))
    return folder


# ------------------------------------------------------------------------------- settings
def test_settings_cover_every_task_once_with_its_cost_thresholds():
    assert set(SETTINGS) == set(TASKS) and len(SETTINGS) == 29
    for env_id, settings in SETTINGS.items():
        assert settings.task == env_id
        assert task_info(settings.name).env_id == env_id
        assert settings.cost_thresholds == TASKS[env_id].cost_thresholds
        assert settings.collection.runs >= 1


@pytest.mark.parametrize("name", sorted(p.name for p in shipped_dir().glob("*.hdf5")))
def test_shipped_files_were_made_with_their_tasks_settings(name):
    data = TrajectoryDataset.from_hdf5(shipped_dir() / name)
    made = data.metadata["collect_config"]
    assert SETTINGS[data.task].data == "shipped"
    c = SETTINGS[data.task].collection
    assert data.n_episodes == c.episodes
    assert made["behaviour"]["train_steps"] == c.train_steps and made["seed"] == c.seed
    for name in ("penalties", "budgets", "noise_levels"):
        assert tuple(made[name]) == getattr(c, name)


def test_every_shipped_file_is_listed_for_its_task():
    on_disk = sorted(p.name for p in shipped_dir().glob("*.hdf5"))
    assert sorted(SHIPPED_DATASETS.values()) == on_disk
    shipped = sorted(s.task for s in SETTINGS.values() if s.data == "shipped")
    assert shipped == sorted(SHIPPED_DATASETS)
    sizes = [p.stat().st_size for p in shipped_dir().glob("*.hdf5")]
    assert max(sizes) <= 10 * 2**20 and sum(sizes) <= 60 * 2**20  # the project's size rule


def test_unknown_task_lists_every_task():
    with pytest.raises(EnvironmentError_) as info:
        settings_for("carrun")
    message = str(info.value)
    assert "did you mean CarRun?" in message
    for settings in SETTINGS.values():
        assert settings.name in message


def test_override_routes_collection_fields_and_ignores_none():
    base = settings_for("CarRun")
    same = base.override(bc_steps=None, episodes=None)
    assert same == base
    changed = base.override(episodes=7, budgets=(), bc_steps=5, cost_thresholds=(20,))
    assert changed.collection.episodes == 7 and changed.collection.budgets == ()
    assert changed.collection.train_steps == base.collection.train_steps
    assert changed.bc_steps == 5 and changed.cost_thresholds == (20.0,)
    with pytest.raises(ConfigError, match="unknown setting"):
        base.override(prefine_stpes=3)
    with pytest.raises(ConfigError, match="bc_steps=0"):
        base.override(bc_steps=0)


def test_tasks_command_shows_every_tasks_settings():
    result = CliRunner().invoke(app, ["tasks"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 2 * 29
    assert any(line.startswith("    DroneRun: data=recorded collect: 600 ep, 50000 PPO steps "
                               "× 6 runs (k=0/0.5/1/2, budgets=0.5/1") for line in lines)


# ------------------------------------------------------------------------------- data lookup
def test_data_lookup_order(tmp_path, no_dsrl_files):
    settings = settings_for("BallRun")
    shipped = shipped_dir() / SHIPPED_DATASETS["OfflineBallRun-v0"]
    data_dir = tmp_path / "data"
    found = find_data(settings, data_dir=data_dir)
    assert (found.kind, found.path) == ("shipped", shipped)
    (data_dir / "BallRun").mkdir(parents=True)
    mine = data_dir / "BallRun" / "SafetyBallRun-v0-93-972.hdf5"
    mine.symlink_to(shipped)
    (data_dir / "BallRun" / "SafetyBallRunner-v0-1-2.hdf5").symlink_to(shipped)  # not BallRun's
    found = find_data(settings, data_dir=data_dir)
    assert (found.kind, found.path) == ("data-dir", mine)
    official = no_dsrl_files / "SafetyBallRun-v0-80-940.hdf5"  # DSRL's own name
    official.symlink_to(shipped)
    found = find_data(settings, data_dir=data_dir)
    assert (found.kind, found.path) == ("dsrl", official)
    found = find_data(settings, dataset=mine, data_dir=data_dir)
    assert (found.kind, found.path) == ("file", mine)
    with pytest.raises(DataError, match="no such file"):
        find_data(settings, dataset=tmp_path / "missing.hdf5")


def test_several_collected_files_pick_the_settings_episode_count(tmp_path, no_dsrl_files):
    settings = settings_for("BallRun")
    shipped = shipped_dir() / SHIPPED_DATASETS["OfflineBallRun-v0"]
    for name in ("SafetyBallRun-v0-93-972.hdf5", "SafetyBallRun-v0-50-10.hdf5"):
        (tmp_path / name).symlink_to(shipped)
    assert find_data(settings, data_dir=tmp_path).path.name == "SafetyBallRun-v0-93-972.hdf5"
    with pytest.raises(DataError, match="--dataset FILE"):
        find_data(settings.override(episodes=5), data_dir=tmp_path)


# ------------------------------------------------------------------------------- errors
def test_no_collect_without_data_says_how_to_get_data(tmp_path, no_dsrl_files):
    settings = settings_for("PointGoal1")
    with pytest.raises(DataError) as info:
        run_suite(settings, tmp_path / "out", data_dir=tmp_path / "data", collect=False)
    message = str(info.value)
    assert "--no-collect" in message and "--dataset FILE" in message
    assert str(no_dsrl_files / "SafetyPointGoal1Gymnasium-v0-100-2022.hdf5") in message
    assert "retrofit collect PointGoal1" in message
    assert not (tmp_path / "out").exists()


def test_file_of_another_task_names_both_shapes(tmp_path, no_dsrl_files):
    wrong = default_dataset_path("OfflineBallCircle-v0")  # 8-dim observations; BallRun has 7
    with pytest.raises(DataError) as info:
        run_suite(settings_for("BallRun"), tmp_path, dataset=wrong, log=lambda _: None)
    message = str(info.value)
    assert "observations have shape (8,)" in message and "has observations (7,)" in message
    assert "OfflineBallCircle-v0's data" in message
    assert not (tmp_path / "reference").exists()


def test_impossible_split_fails_before_training(tmp_path, no_dsrl_files):
    settings = suite_settings("BallRun", n_preferred=5000)
    with pytest.raises(DataError, match="κ=10: PREFINE's D_p/D_np split is impossible"):
        run_suite(settings, tmp_path, log=lambda _: None)
    assert not (tmp_path / "reference").exists()


def test_unknown_method_fails_before_looking_for_data(tmp_path):
    with pytest.raises(ConfigError, match="method='prefin' is unknown"):
        run_suite(settings_for("BallRun"), tmp_path, methods=("prefin",))


def test_cli_unknown_task_lists_tasks(capsys):
    import sys

    from retrofit.cli import main

    argv, sys.argv = sys.argv, ["retrofit", "suite", "Walker2d"]
    try:
        with pytest.raises(SystemExit) as info:
            main()
    finally:
        sys.argv = argv
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "did you mean" not in err and "Walker2dVelocity" in err and "CarRun" in err


# ------------------------------------------------------------------------------- collection
def test_collects_into_data_dir_when_nothing_is_found(tmp_path, no_dsrl_files):
    settings = suite_settings("BallRun", episodes=2, train_steps=32, penalties=(0.0,),
                              budgets=())
    source = collect_data(settings, tmp_path, progress=False)
    assert source.kind == "collected" and source.collect_wall_clock_s > 0
    assert source.path.parent == tmp_path / "BallRun" and source.path.name.endswith("-2.hdf5")
    assert any((tmp_path / "cache" / "BallRun").iterdir())  # snapshots kept for a resume
    data = TrajectoryDataset.from_hdf5(source.path)
    assert data.n_episodes == 2 and data.task == "OfflineBallRun-v0"
    found = find_data(settings, data_dir=tmp_path)
    assert (found.kind, found.path) == ("data-dir", source.path)


# ------------------------------------------------------------------------------- end to end
def test_suite_end_to_end_on_shipped_ballrun_then_resume(tmp_path, no_dsrl_files):
    out = tmp_path / "out"
    args = ["suite", "BallRun", "--out", str(out), "--data-dir", str(tmp_path / "data"),
            "--methods", "prefine,bc-safe", "--seeds", "0", "--bc-steps", "30", "--steps", "10",
            "--episodes", "1", "--n-preferred", "20", "--n-nonpreferred", "5", "--in-process",
            "--quiet", "--device", "cpu"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "data    shipped:" in result.output and "| prefine | 40 |" in result.output
    with open(out / "results.csv") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == RESULT_COLUMNS
        rows = list(reader)
    cost_thresholds = (10.0, 20.0, 40.0)
    assert [(r["method"], float(r["cost_threshold"])) for r in rows] == [
        *(("reference", k) for k in cost_thresholds),
        *((m, k) for k in cost_thresholds for m in ("prefine", "bc-safe"))]
    reference = [r for r in rows if r["method"] == "reference"]
    costs = [float(r["normalized_cost"]) * float(r["cost_threshold"]) for r in reference]
    assert np.allclose(costs, costs[0])  # one evaluation of π_ref, normalised per κ
    assert all(r["updates"] == "10" for r in rows if r["method"] != "reference")
    report = json.loads((out / "suite.json").read_text())
    assert report["data"]["kind"] == "shipped" and report["settings"]["bc_steps"] == 30
    phases = report["phases"]
    assert len(phases["bc_s"]) == 1 and len(phases["prefine"]["train_s"]) == 3
    assert all(t > 0 for t in phases["prefine"]["eval_s"])
    assert (out / "table.md").read_text().count("\n| ") == 10  # header + 9 rows
    assert (out / "reward_cost.png").stat().st_size > 10_000

    stamps = {p: p.stat().st_mtime_ns for p in (out / "cells").iterdir()}
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert again.output.count("skip  ") == 6 and "run   " not in again.output
    assert {p: p.stat().st_mtime_ns for p in (out / "cells").iterdir()} == stamps


def _smoke_threshold(path: Path) -> float | None:
    """A κ with at least one safe (cost < κ) and one unsafe episode in tiny data, or None."""
    _, costs = TrajectoryDataset.from_hdf5(path).episode_returns()
    above = costs[costs > costs.min()]
    return float(above.min()) if above.size else None


@pytest.mark.slow
@pytest.mark.parametrize("env_id", sorted(SETTINGS))
def test_every_task_runs_end_to_end_at_smoke_size(env_id, tmp_path, no_dsrl_files):
    """Tiny collection in the real environment, 20 BC and 10 PREFINE steps, one episode.

    Tiny data may hold no unsafe (or no safe) episode at the task's κ, so the smoke κ is taken
    from the data; if every episode has the same cost no split exists, and the runner must say
    so before training.
    """
    settings = suite_settings(env_id, episodes=6, train_steps=64, penalties=(0.0,),
                              budgets=(), noise_levels=(0.0, 0.4, 1.0), seeds=(0,),
                              bc_steps=20, prefine_steps=10, eval_episodes=1, n_preferred=1,
                              n_nonpreferred=1)
    source = collect_data(settings, tmp_path / "data", progress=False)
    cost_threshold = _smoke_threshold(source.path)
    out = tmp_path / "out"
    if cost_threshold is None:
        with pytest.raises(DataError, match="split is impossible"):
            run_suite(settings.override(cost_thresholds=(1.0,)), out,
                      data_dir=tmp_path / "data", collect=False, device="cpu", isolate=False,
                      progress=False, log=lambda _: None)
        assert not (out / "reference").exists()
        pytest.skip(f"{env_id}: all 6 smoke episodes have the same cost; no D_p/D_np split")
    report = run_suite(settings.override(cost_thresholds=(cost_threshold,)), out,
                       data_dir=tmp_path / "data", collect=False, device="cpu", isolate=False,
                       progress=False, log=lambda _: None)
    assert report["data"]["kind"] == "data-dir"
    assert [s["method"] for s in report["summary"]] == ["reference", "prefine"]
    assert np.isfinite([s["reward_mean"] for s in report["summary"]]).all()


def test_suite_local_workers_give_the_in_process_rows(tmp_path, no_dsrl_files):
    """`retrofit suite --workers 2` (cells in worker processes) writes the same rows."""
    def run(out: Path, *extra: str) -> list[tuple]:
        args = ["suite", "BallRun", "--out", str(out), "--data-dir", str(tmp_path / "data"),
                "--methods", "prefine,bc-safe", "--seeds", "0", "--thresholds", "20",
                "--bc-steps", "20", "--steps", "5", "--episodes", "1", "--n-preferred", "20",
                "--n-nonpreferred", "5", "--quiet", "--device", "cpu", *extra]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        pooled = "(one of 2 local workers)" in result.output
        assert pooled == ("--workers" in extra)
        with open(out / "results.csv") as fh:
            return sorted((r["method"], r["seed"], r["normalized_reward"], r["normalized_cost"])
                          for r in csv.DictReader(fh))

    assert run(tmp_path / "pool", "--workers", "2") == run(tmp_path / "here", "--in-process")
