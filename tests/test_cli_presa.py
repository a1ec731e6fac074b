"""``retrofit feedback`` and ``retrofit presa``: real shipped data, real files, tiny budgets."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from retrofit import feedback
from retrofit.cli import app, main
from retrofit.data.dataset import TrajectoryDataset
from retrofit.data.shipped import default_dataset_path
from retrofit.policies.gaussian import TanhGaussianPolicy
from retrofit.policies.io import load_policy, save_policy
from retrofit.pretrain import action_bounds

TASK = "OfflineBallCircle-v0"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The shipped BallCircle file, a 64-pair feedback file from it, and a small saved policy."""
    root = tmp_path_factory.mktemp("cli")
    data_path = default_dataset_path(TASK)
    result = CliRunner().invoke(app, [
        "feedback", str(data_path), "--out", str(root / "fb.h5"), "--pairs", "64",
        "--segment-length", "16", "--seed", "3",
    ])
    assert result.exit_code == 0, result.output
    assert '"n_pairs": 64' in result.output and "wrote" in result.output
    data = TrajectoryDataset.from_hdf5(data_path, task=TASK)
    torch.manual_seed(0)
    policy = TanhGaussianPolicy(data.observations.shape[1], data.actions.shape[1],
                                *action_bounds(data), hidden_sizes=(16, 16))
    save_policy(policy, root / "ref.pt")
    return {"data": data_path, "fb": root / "fb.h5", "ref": root / "ref.pt", "root": root}


def test_feedback_file_is_the_python_api_result(files: dict[str, Path]) -> None:
    loaded = feedback.load(files["fb"])
    data = TrajectoryDataset.from_hdf5(files["data"], task=TASK)
    expected = feedback.synthesize(data, n_pairs=64, segment_length=16, cost_threshold=20.0,
                                   seed=3)
    assert (loaded.starts == expected.starts).all() and (loaded.safety == expected.safety).all()
    assert loaded.task == TASK and loaded.cost_threshold == 20.0


def test_link_dataset_writes_a_small_file_that_finds_its_data(files: dict[str, Path]) -> None:
    linked = files["root"] / "linked.h5"
    result = CliRunner().invoke(app, [
        "feedback", str(files["data"]), "--out", str(linked), "--pairs", "64",
        "--segment-length", "16", "--seed", "3", "--link-dataset",
    ])
    assert result.exit_code == 0, result.output
    assert linked.stat().st_size < files["fb"].stat().st_size / 10
    assert (feedback.load(linked).starts == feedback.load(files["fb"]).starts).all()


def test_presa_trains_saves_logs_and_evaluates(files: dict[str, Path]) -> None:
    out, log = files["root"] / "aligned.pt", files["root"] / "log"
    result = CliRunner().invoke(app, [
        "presa", str(files["ref"]), str(files["fb"]), "--out", str(out), "--steps", "3",
        "--episodes", "1", "--set", "batch_size=4", "--set", "eta=0.5", "--log-dir", str(log),
        "--quiet", "--device", "cpu",
    ])
    assert result.exit_code == 0, result.output
    assert "reference: normalized reward" in result.output
    assert "retrofitted: normalized reward" in result.output
    assert (log / "report.md").exists() and (log / "reward_cost.png").exists()
    aligned, reference = load_policy(out), load_policy(files["ref"])
    assert not torch.equal(aligned.mean_head.weight, reference.mean_head.weight)
    with (log / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 and float(rows[-1]["nu"]) > 0
    assert '"eta": 0.5' in (log / "config.json").read_text()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["presa", "missing.pt", "{fb}", "--out", "{root}/x.pt"], "no such policy file"),
        (["presa", "{fb}", "{fb}", "--out", "{root}/x.pt"], "not a retrofit policy file"),
        (["presa", "{ref}", "{ref}", "--out", "{root}/x.pt"], "not a readable HDF5 file"),
        (["presa", "{ref}", "{fb}", "--out", "{root}/x.pt", "--set", "etaa=1"], "etaa"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(
    files: dict[str, Path], argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = {k: str(v) for k, v in files.items()}
    monkeypatch.setattr(sys, "argv", ["retrofit", *(a.format(**names) for a in argv)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not (files["root"] / "x.pt").exists()


def test_unknown_method_is_a_usage_error(files: dict[str, Path]) -> None:
    result = CliRunner().invoke(app, [
        "presa", str(files["ref"]), str(files["fb"]), "--out", "x.pt", "--method", "dpo",
    ])
    assert result.exit_code == 2 and "presa-filtered" in result.output
