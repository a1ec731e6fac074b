"""The Weights & Biases logger (``--log wandb``, issue 25), run for real with W&B offline: a fit
sends W&B the same per-step scalars a CSV fit writes and its settings as the run config; the CLI
takes ``--log wandb``; a resumed fit continues the same W&B run with each step once; a folder
holding a W&B run is refused unless overwritten; without wandb installed, the error names the
extra to install. What W&B wrote is read back from its offline ``.wandb`` files
(``tests/wandb_files.py``).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from retrofit import Retrofitter
from retrofit.data.dataset import TrajectoryDataset, action_bounds
from retrofit.data.shipped import default_dataset_path
from retrofit.errors import ConfigError
from retrofit.policies.gaussian import TanhGaussianPolicy
from retrofit.policies.io import save_policy
from tests.cli_run import run_cli
from tests.wandb_files import config, history, run_files, run_id

STEPS, EVERY, STOP = 10, 4, 7


@pytest.fixture()
def wandb_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """W&B offline, every file it writes (runs, cache, settings) under ``tmp_path``."""
    if importlib.util.find_spec("wandb") is None:
        pytest.fail("wandb is not installed: scripts/setup.sh installs it from "
                    "requirements/wandb.txt (the wandb extra)")
    root = tmp_path / "wandb_home"
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(root))
    for name in ("CACHE", "CONFIG", "DATA", "ARTIFACT"):
        monkeypatch.setenv(f"WANDB_{name}_DIR", str(root / name.lower()))
    for name in ("WANDB_PROJECT", "WANDB_ENTITY", "WANDB_RUN_ID", "WANDB_RESUME"):
        monkeypatch.delenv(name, raising=False)
    root.mkdir()
    return root


@pytest.fixture(scope="module")
def ballrun() -> tuple:
    data = TrajectoryDataset.from_hdf5(default_dataset_path("OfflineBallRun-v0"))
    return data, data.split_preferences(20.0, n_preferred=20, n_nonpreferred=5, seed=0)


def small_policy(data: TrajectoryDataset) -> TanhGaussianPolicy:
    torch.manual_seed(0)
    return TanhGaussianPolicy(data.observation_dim, data.action_dim, *action_bounds(data),
                              hidden_sizes=(8,))


def fit(ballrun: tuple, folder: Path, log: str, **options: object) -> None:
    data, split = ballrun
    settings = {"device": "cpu", "progress": False, "log_dir": folder, "log": log,
                "batch_size": 8, "steps": 3, **options}
    Retrofitter(small_policy(data), **settings).fit(*split)


def test_a_fit_sends_the_csv_scalars_and_its_settings(ballrun: tuple, wandb_dir: Path,
                                                      tmp_path: Path) -> None:
    fit(ballrun, tmp_path / "csv", "csv")
    fit(ballrun, tmp_path / "wandb", "wandb")
    [path] = run_files(wandb_dir)
    sent = history(path)
    with (tmp_path / "csv" / "metrics.csv").open() as fh:
        written = [(int(row.pop("step")), row) for row in csv.DictReader(fh)]
    assert [step for step, _ in sent] == [step for step, _ in written] == [1, 2, 3]
    for (_, metrics), (_, row) in zip(sent, written, strict=True):
        assert set(metrics) == set(row) and any(name.startswith("logps/") for name in row)
        for name, value in metrics.items():  # the same seeded fit: equal to CSV's 6 digits
            assert value == pytest.approx(float(row[name]), rel=1e-5, abs=1e-8), name
    settings = config(path)
    assert settings["method"] == "prefine" and settings["seed"] == 0
    assert settings["steps"] == 3 and settings["batch_size"] == 8
    record = json.loads((tmp_path / "wandb" / "wandb_run.json").read_text())
    assert record["id"] == run_id(path) and record["project"] == "retrofit"
    assert record["last_step"] == 3
    assert not (tmp_path / "wandb" / "metrics.csv").exists()


def test_cli_fit_log_wandb(ballrun: tuple, wandb_dir: Path, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    data, _ = ballrun
    save_policy(small_policy(data), tmp_path / "ref.pt")
    code, err = run_cli(monkeypatch, capsys, [
        "fit", tmp_path / "ref.pt", default_dataset_path("OfflineBallRun-v0"),
        "--cost-threshold", "20", "--steps", "3", "--set", "batch_size=8", "--log", "wandb",
        "--out", tmp_path / "out.pt", "--quiet", "--device", "cpu"])
    assert code == 0, err
    [path] = run_files(wandb_dir)
    assert [step for step, _ in history(path)] == [1, 2, 3]
    assert config(path)["method"] == "prefine"
    report = json.loads((tmp_path / "out_fit" / "report.json").read_text())
    assert report["steps"] == 3 and "learning_curves" not in report  # W&B draws them


def test_a_resumed_fit_continues_its_wandb_run_with_each_step_once(
        ballrun: tuple, wandb_dir: Path, tmp_path: Path) -> None:
    data, split = ballrun
    settings = {"device": "cpu", "progress": False, "log_dir": tmp_path / "fit", "log": "wandb",
                "checkpoint_every": EVERY, "batch_size": 8, "steps": STEPS}
    Retrofitter(small_policy(data), **settings).fit(
        *split, callback=lambda step, _: step == STOP, callback_every=1)
    Retrofitter(small_policy(data), **settings).fit(*split, resume=True)
    first, second = run_files(wandb_dir)
    assert run_id(first) == run_id(second)
    steps = [step for path in (first, second) for step, _ in history(path)]
    assert steps == list(range(1, STEPS + 1))


def test_a_new_run_over_a_wandb_run_is_refused_or_started_anew(
        ballrun: tuple, wandb_dir: Path, tmp_path: Path) -> None:
    from retrofit.wandb_log import WandbLogger

    first = WandbLogger(tmp_path)
    first.close()
    with pytest.raises(ConfigError, match="resume it, choose another folder, or pass overwrite"):
        WandbLogger(tmp_path)
    second = WandbLogger(tmp_path, overwrite=True)
    second.close()
    ids = {run_id(path) for path in run_files(wandb_dir)}
    assert len(ids) == 2
    assert json.loads((tmp_path / "wandb_run.json").read_text())["id"] == second._run.id


def test_a_run_wandb_cannot_start_is_a_config_error_saying_what_to_do(
        wandb_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from retrofit.wandb_log import WandbLogger

    monkeypatch.setenv("WANDB_MODE", "offlien")
    with pytest.raises(ConfigError, match=r"offlien.*`wandb login`, or set WANDB_MODE=offline"):
        WandbLogger(tmp_path / "fit")
    assert not (tmp_path / "fit" / "wandb_run.json").exists()


def test_without_wandb_the_error_names_the_extra(
        ballrun: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    data, _ = ballrun
    save_policy(small_policy(data), tmp_path / "ref.pt")
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` fails as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'retrofit-rl\[wandb\]'"):
        Retrofitter(small_policy(data), log="wandb", log_dir=tmp_path / "api")
    code, err = run_cli(monkeypatch, capsys, [
        "fit", tmp_path / "ref.pt", default_dataset_path("OfflineBallRun-v0"),
        "--cost-threshold", "20", "--steps", "3", "--log", "wandb", "--out", tmp_path / "out.pt",
        "--quiet", "--device", "cpu"])
    assert code == 2 and "retrofit-rl[wandb]" in err
    assert not (tmp_path / "api").exists() and not (tmp_path / "out_fit").exists()
