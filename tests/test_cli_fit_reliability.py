"""``retrofit fit`` never continues a changed run, never takes one setting from two places and
never shares its folder with a second live run (issue 22). Real commands, files and processes;
fits of a few steps on the shipped BallRun data.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from retrofit.data.dataset import TrajectoryDataset, action_bounds
from retrofit.data.shipped import default_dataset_path
from retrofit.errors import ConfigError
from retrofit.fit_command import FitRequest, check_out_still_free
from retrofit.methods.prefine import PREFINE_PRESETS
from retrofit.outputs import LOCK_NAME
from retrofit.policies.gaussian import TanhGaussianPolicy
from retrofit.policies.io import save_policy
from tests.cli_run import run_cli

RETROFIT = str(Path(sys.executable).with_name("retrofit"))
DATA = default_dataset_path("OfflineBallRun-v0")


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """Three policies of BallRun's sizes (other weights, another hidden width) in ``tmp_path``."""
    data = TrajectoryDataset.from_hdf5(DATA)
    for seed, name, hidden in ((0, "ref.pt", 8), (1, "other.pt", 8), (0, "wide.pt", 16)):
        torch.manual_seed(seed)
        save_policy(TanhGaussianPolicy(data.observation_dim, data.action_dim, *action_bounds(data),
                                       hidden_sizes=(hidden,)), tmp_path / name)
    return {"root": tmp_path, **{name: tmp_path / f"{name}.pt" for name in
                                 ("ref", "other", "wide")}}


def argv(files: dict[str, Path], *extra: str, policy: str = "ref", steps: str = "4") -> list[str]:
    return ["fit", str(files[policy]), str(DATA), "--out", str(files["root"] / "out.pt"),
            "--cost-threshold", "20", "--steps", steps, "--checkpoint-every", "2",
            "--set", "batch_size=8", "--quiet", "--device", "cpu", *extra]


cli = run_cli


def test_resume_of_a_changed_run_is_refused_and_more_steps_are_recorded(
        files: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(monkeypatch, capsys, argv(files)) == (0, "")
    folder = files["root"] / "out_fit"
    original = json.loads((folder / "config.json").read_text())
    changed = [
        (argv(files, "--resume", "--set", "learning_rate=0.001"),
         f"learning_rate: {PREFINE_PRESETS['bullet']['learning_rate']} -> 0.001"),
        (argv(files, "--resume", "--seed", "1"), "seed: 0 -> 1"),
        (argv(files, "--resume", "--method", "dpo"), 'method: "prefine" -> "dpo"'),
        (argv(files, "--resume", "--set", "beta=0.5"), "beta: 0.2 -> 0.5"),
        (argv(files, "--resume", policy="other"), "policy: sha256 "),
        (argv(files, "--resume", policy="wide"), "policy: sha256 "),  # not a size traceback
    ]
    for args, named in changed:
        code, err = cli(monkeypatch, capsys, args)
        assert code == 2 and err.count("\n") == 1, (args, err)
        assert named in err and "the run changed since it was saved" in err, (args, err)
        assert "--overwrite" in err and "another --out" in err
    args = argv(files, "--resume")
    args[args.index("20")] = "30"  # another κ: another split of the data
    code, err = cli(monkeypatch, capsys, args)
    assert code == 2 and "data: sha256 " in err, err
    assert json.loads((folder / "config.json").read_text()) == original

    assert cli(monkeypatch, capsys, argv(files, "--resume", steps="6"))[0] == 0
    config = json.loads((folder / "config.json").read_text())
    assert config == {**original, "resumes": [{"from_step": 4, "steps": 6}]}
    assert json.loads((folder / "report.json").read_text())["steps"] == 6


@pytest.mark.parametrize(("extra", "message"), [
    (["--method", "cpq", "--set", "cost_threshold=5"],
     "cost_threshold is given twice: --cost-threshold 20 and --set cost_threshold=5; "
     "give it once, with --cost-threshold."),
    (["--set", "steps=9"], "steps is given twice: --steps 4 and --set steps=9"),
])
def test_one_setting_from_two_sources_is_refused(
        files: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], extra: list[str], message: str) -> None:
    code, err = cli(monkeypatch, capsys, argv(files, *extra))
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (files["root"] / "out_fit").exists() and not (files["root"] / "out.pt").exists()


def test_set_cost_threshold_alone_points_to_the_option(
        files: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    args = argv(files, "--method", "cpq", "--set", "cost_threshold=5")
    at = args.index("--cost-threshold")
    del args[at:at + 2]
    code, err = cli(monkeypatch, capsys, args)
    assert code == 2 and "pass --cost-threshold 5 instead" in err, err


def _checkpoint_steps(folder: Path) -> int:
    path = folder / "checkpoint.pt"
    return int(torch.load(path, weights_only=True)["position"]["steps_done"]) \
        if path.exists() else 0


def test_a_second_fit_into_a_live_folder_is_refused_and_a_killed_one_resumes(
        files: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    folder = files["root"] / "out_fit"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([RETROFIT, *argv(files, steps="1000000")], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while _checkpoint_steps(folder) < 2:
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.05)
        code, err = cli(monkeypatch, capsys, argv(files, "--overwrite"))
        assert code == 2 and err.count("\n") == 1, err
        assert f"is in use by another `retrofit fit` (pid {first.pid} on" in err, err
        code, err = cli(monkeypatch, capsys, argv(files, "--resume", steps="1000000"))
        assert code == 2 and f"(pid {first.pid} on" in err, err
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    assert (folder / LOCK_NAME).exists()  # the killed process could not remove its lock
    done = _checkpoint_steps(folder)
    code, err = cli(monkeypatch, capsys, argv(files, "--resume", steps=str(done + 2)))
    assert code == 0, err
    assert json.loads((folder / "report.json").read_text())["steps"] == done + 2
    assert not (folder / LOCK_NAME).exists()


def test_out_written_by_another_process_during_training_is_not_replaced(
        files: dict[str, Path]) -> None:
    request = FitRequest(policy=files["ref"], data=DATA, out=files["root"] / "out.pt")
    check_out_still_free(request)
    request.out.write_bytes(b"another run's result")
    with pytest.raises(ConfigError, match="appeared while this run trained"):
        check_out_still_free(request)
    assert request.out.read_bytes() == b"another run's result"


@pytest.mark.slow  # FQE at its defaults (20 resamples, 2 H iterations): minutes on 2 cores
def test_select_every_writes_the_selected_policy_and_the_safety_report(files, monkeypatch,
                                                                        capsys):
    assert cli(monkeypatch, capsys, argv(files, "--select-every", "2")) == (0, "")
    folder = files["root"] / "out_fit"
    report = json.loads((folder / "report.json").read_text())
    chosen = report["selected_checkpoint"]
    safety = json.loads((folder / "safety_report.json").read_text())
    assert chosen["name"] == safety["selection"]["name"]
    assert [c["name"] for c in safety["checkpoints"]] == ["step 2", "step 4 (final)"]
    assert "chosen by the offline estimate" in (folder / "report.md").read_text()
    assert sorted(p.name for p in (folder / "kept").iterdir()) == ["step_2.pt", "step_4.pt"]


def test_negative_select_every_is_refused_before_training(files, monkeypatch, capsys):
    code, err = cli(monkeypatch, capsys, argv(files, "--select-every", "-1"))
    assert code != 0 and "--select-every -1" in err
    assert not (files["root"] / "out_fit").exists()
