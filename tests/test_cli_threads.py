"""``--threads`` (issue 25): fit, presa and demo default to one torch thread — the count chosen
by benchmarks/thread_default.py — set it before training, record it, and refuse a bad value
before anything is written. Real commands on the shipped BallRun data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from retrofit.data.dataset import TrajectoryDataset, action_bounds
from retrofit.data.shipped import default_dataset_path
from retrofit.device import DEFAULT_THREADS
from retrofit.policies.clipped_gaussian import ClippedGaussianPolicy
from retrofit.policies.io import save_policy
from tests.cli_run import run_cli

DATA = default_dataset_path("OfflineBallRun-v0")


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    data = TrajectoryDataset.from_hdf5(DATA)
    path = tmp_path / "ref.pt"
    save_policy(ClippedGaussianPolicy(data.observation_dim, data.action_dim, *action_bounds(data),
                                      hidden_sizes=(8,), fixed_std=0.2), path)
    return path


@pytest.fixture
def restore_threads() -> object:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _fit(policy_file: Path, *extra: str) -> list[str]:
    return ["fit", str(policy_file), str(DATA), "--out", str(policy_file.parent / "out.pt"),
            "--cost-threshold", "20", "--steps", "2", "--set", "batch_size=8", "--quiet",
            "--device", "cpu", *extra]


def test_fit_runs_at_the_default_thread_count_and_records_it(
        policy_file: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], restore_threads: object) -> None:
    assert DEFAULT_THREADS == 1
    torch.set_num_threads(2)
    assert run_cli(monkeypatch, capsys, _fit(policy_file)) == (0, "")
    assert torch.get_num_threads() == DEFAULT_THREADS
    report = json.loads((policy_file.parent / "out_fit" / "report.json").read_text())
    assert report["threads"] == DEFAULT_THREADS
    resolved = json.loads((policy_file.parent / "out_fit" / "resolved_config.json").read_text())
    assert resolved["threads"] == DEFAULT_THREADS


def test_fit_with_two_threads_sets_two(
        policy_file: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], restore_threads: object) -> None:
    torch.set_num_threads(1)
    assert run_cli(monkeypatch, capsys, _fit(policy_file, "--threads", "2")) == (0, "")
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("command", ["fit", "demo"])
def test_zero_threads_is_refused_before_anything_is_written(
        command: str, policy_file: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], restore_threads: object) -> None:
    out = policy_file.parent / "demo_out"
    args = (_fit(policy_file, "--threads", "0") if command == "fit" else
            ["demo", "--out", str(out), "--threads", "0", "--steps", "2", "--bc-steps", "2"])
    code, err = run_cli(monkeypatch, capsys, args)
    assert code != 0
    assert "threads=0 must be an integer >= 1" in " ".join(err.split())
    assert not (policy_file.parent / "out_fit").exists() and not out.exists()
