"""Inputs that failed late or with a raw traceback now fail first, in one line that names the
field and the fix: ``ConfigError``/``DataError``/``PolicyError`` from Python, exit status 2 from
the CLI, and nothing written (issue 22). Real files, commands and fits of a few steps on a
100-episode slice of the shipped BallRun data.
"""

from __future__ import annotations

import os
import subprocess
import warnings
from pathlib import Path

import h5py
import pytest
import torch

from retrofit import Retrofitter, feedback
from retrofit.adapters.gaussian_mlp import TanhGaussianAdapter
from retrofit.atomic import atomic_torch_save, atomic_write_bytes
from retrofit.cli import MAX_SEED as CLI_MAX_SEED
from retrofit.data.dataset import TrajectoryDataset, action_bounds
from retrofit.data.shipped import default_dataset_path
from retrofit.device import MAX_SEED
from retrofit.errors import ConfigError, DataError, DiskFullError, PolicyError
from retrofit.policies.gaussian import TanhGaussianPolicy
from retrofit.policies.io import save_policy
from tests.cli_run import run_cli

FAST = ["--steps", "2", "--set", "batch_size=8", "--quiet", "--device", "cpu"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A policy, a 100-episode dataset (with and without its task), a feedback file of it and a
    copy of that file with damaged bytes, in one folder."""
    root = tmp_path_factory.mktemp("files")
    data = TrajectoryDataset.from_hdf5(default_dataset_path("OfflineBallRun-v0"))
    small = data.select_episodes(list(range(100)))
    small.to_hdf5(root / "data.h5")
    TrajectoryDataset(**small.to_dict(), task=None).to_hdf5(root / "notask.h5")
    torch.manual_seed(0)
    save_policy(TanhGaussianPolicy(data.observation_dim, data.action_dim, *action_bounds(data),
                                   hidden_sizes=(8,)), root / "ref.pt")
    fb = feedback.synthesize(small, n_pairs=64, segment_length=8, cost_threshold=20, seed=0)
    feedback.save(fb, root / "fb.h5")
    with h5py.File(root / "fb.h5") as handle:
        offset = handle["dataset/observations"].id.get_chunk_info(0).byte_offset
    raw = bytearray((root / "fb.h5").read_bytes())
    raw[offset + 100:offset + 400] = bytes(b ^ 0xFF for b in raw[offset + 100:offset + 400])
    (root / "fb_damaged.h5").write_bytes(bytes(raw))
    return {"root": root, "data": root / "data.h5", "notask": root / "notask.h5",
            "ref": root / "ref.pt", "fb": root / "fb.h5", "damaged": root / "fb_damaged.h5"}


def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        *args: object) -> tuple[int, str]:
    """Run ``retrofit ARGS`` in this process; ``(exit status, stderr)``."""
    return run_cli(monkeypatch, capsys, args)


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("seed", [-1, 2**64])
def test_a_seed_outside_torchs_range_is_refused_before_anything_is_written(
        files: dict[str, Path], tmp_path: Path, seed: int,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert CLI_MAX_SEED == MAX_SEED == 2**64 - 1
    policy = TanhGaussianPolicy(7, 2, -torch.ones(2), torch.ones(2), hidden_sizes=(8,))
    with pytest.raises(ConfigError, match=r"seed=.* must be an integer from 0 to 2\*\*64 - 1"):
        Retrofitter(policy, seed=seed, log_dir=tmp_path / "log")
    out = tmp_path / "out.pt"
    code, err = cli(monkeypatch, capsys, "fit", files["ref"], files["data"], "--out", out,
                    "--cost-threshold", 20, "--seed", seed, *FAST)
    assert code == 2 and "--seed" in one_error_line(err)
    assert not list(tmp_path.iterdir())


def test_to_hdf5_under_a_regular_file_names_it(files: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a file")
    data = TrajectoryDataset.from_hdf5(files["data"])
    with pytest.raises(ConfigError, match=r"notes\.txt' is a file, not a folder"):
        data.to_hdf5(tmp_path / "notes.txt" / "sub" / "data.h5")
    assert (tmp_path / "notes.txt").read_text() == "a file"


def test_a_damaged_feedback_file_is_a_data_error(
        files: dict[str, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(DataError, match="damaged feedback file.*retrofit feedback"):
        feedback.load(files["damaged"])
    out = tmp_path / "out.pt"
    code, err = cli(monkeypatch, capsys, "fit", files["ref"], files["damaged"], "--method",
                    "presa", "--out", out, *FAST)
    assert code == 2 and "damaged feedback file" in one_error_line(err)
    assert not list(tmp_path.iterdir())


def test_evaluation_without_the_datas_task_is_refused_before_training(
        files: dict[str, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.pt"
    code, err = cli(monkeypatch, capsys, "fit", files["ref"], files["notask"], "--out", out,
                    "--cost-threshold", 20, "--n-preferred", 20, "--n-nonpreferred", 5,
                    "--episodes", 1, *FAST)
    line = one_error_line(err)
    assert code == 2 and "--episodes 1 needs the data's task" in line
    assert not list(tmp_path.iterdir())


def test_cdt_export_and_presa_on_a_bc_all_policy(
        files: dict[str, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A CDT policy is refused by export as a policy with memory (not as a fine-tuning
    reference); PreSa fine-tunes a BC-All policy (an AttributeError before)."""
    for method in ("cdt", "bc-all"):
        code, err = cli(monkeypatch, capsys, "fit", files["ref"], files["data"], "--method",
                        method, "--out", tmp_path / f"{method}.pt", "--cost-threshold", 20,
                        *FAST)
        assert code == 0, err
    code, err = cli(monkeypatch, capsys, "export", tmp_path / "cdt.pt", "--out",
                    tmp_path / "cdt.onnx")
    assert code == 2 and "policy with memory" in one_error_line(err)
    assert not (tmp_path / "cdt.onnx").exists()
    code, err = cli(monkeypatch, capsys, "fit", tmp_path / "bc-all.pt", files["fb"], "--method",
                    "presa", "--out", tmp_path / "presa.pt", *FAST)
    assert code == 0, err
    assert (tmp_path / "presa.pt").is_file()


class _NoMeanAdapter(TanhGaussianAdapter):
    """A user's adapter whose deterministic action fails when first called (as BC-All's did)."""

    def mean_action(self, obs: torch.Tensor) -> torch.Tensor:
        raise PolicyError("this adapter has no deterministic action")


def test_a_fit_that_fails_before_its_first_step_leaves_nothing(
        files: dict[str, Path], tmp_path: Path) -> None:
    fb = feedback.load(files["fb"])
    torch.manual_seed(0)
    policy = TanhGaussianPolicy(fb.dataset.observation_dim, fb.dataset.action_dim,
                                *action_bounds(fb.dataset), hidden_sizes=(8,))
    retrofitter = Retrofitter(_NoMeanAdapter(policy), "presa", device="cpu", progress=False,
                              log_dir=tmp_path / "log", steps=2, batch_size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(PolicyError, match="no deterministic action"):
            retrofitter.fit(fb)
    assert not (tmp_path / "log").exists()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Path:
    """A 64 KiB tmpfs: a real full disk (needs root to mount; skipped otherwise)."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a 64 KiB tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_full_disk_names_the_path_and_the_bytes_needed(tiny_disk: Path) -> None:
    kept = tiny_disk / "kept.bin"
    atomic_write_bytes(kept, b"old")
    with pytest.raises(DiskFullError, match=r"kept\.bin'.*needs 200000 bytes.*bytes free"):
        atomic_write_bytes(kept, bytes(200_000))
    with pytest.raises(DiskFullError, match=r"model\.pt'.*more than the \d+ bytes written"):
        atomic_torch_save(tiny_disk / "model.pt", {"w": torch.zeros(100_000)})  # RuntimeError
    assert kept.read_bytes() == b"old"
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["kept.bin"]
