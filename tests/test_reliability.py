"""Bad inputs and faults (issue 11): each gives a named error before any work and writes nothing.

The table tests give one bad input per row and the error type and message part expected; the
fault tests damage files on disk (HDF5 chunks, JSON attributes, policy bytes) or kill a real
``retrofit compare`` with SIGKILL and resume it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch

from retrofit.data import TrajectoryDataset, check_preference_sets
from retrofit.errors import ConfigError, DataError, PolicyError
from retrofit.policies.clipped_gaussian import ClippedGaussianPolicy
from retrofit.policies.decision_transformer import DecisionTransformer
from retrofit.policies.deterministic import DeterministicPolicy
from retrofit.policies.gaussian import TanhGaussianPolicy
from retrofit.policies.io import (
    check_policy_matches_data,
    load_policy,
    save_policy,
    state_checksum,
)
from retrofit.policies.vae import VAEPolicy


def episodes(lengths: tuple[int, ...] = (3, 4, 3), observation_dim: int = 3, action_dim: int = 2,
             seed: int = 0) -> dict[str, np.ndarray]:
    """Synthetic DSRL arrays whose episodes have the given lengths (costs 0/1)."""
    rng = np.random.default_rng(seed)
    n = sum(lengths)
    timeouts = np.zeros(n, dtype=bool)
    timeouts[np.cumsum(lengths) - 1] = True
    return {
        "observations": rng.normal(size=(n, observation_dim)),
        "next_observations": rng.normal(size=(n, observation_dim)),
        "actions": rng.uniform(-1, 1, size=(n, action_dim)),
        "rewards": rng.normal(size=n),
        "costs": rng.integers(0, 2, size=n).astype(np.float64),
        "terminals": np.zeros(n, dtype=bool),
        "timeouts": timeouts,
    }


# ---------------------------------------------------------------------------- datasets
def _negative_cost() -> dict[str, np.ndarray]:
    data = episodes()
    data["costs"][4] = -1.0
    return data


def _flat_dataset(**kwargs: Any) -> TrajectoryDataset:
    return TrajectoryDataset.from_arrays(episodes(), **kwargs)


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: TrajectoryDataset.from_arrays(_negative_cost()), DataError,
         r"costs: 1 value\(s\) are negative \(first at index 4: -1.0\)"),
        # BallRun's time limit is 100 steps; one 200-step "episode" means its ends are missing
        (lambda: TrajectoryDataset.from_arrays(
            episodes((200,), observation_dim=7), task="BallRun", action_low=-1, action_high=1),
         DataError, r"episode_lengths: 1 episode\(s\) are longer than OfflineBallRun-v0's time "
                    r"limit of 100 steps \(first: episode 0, 200 steps"),
        (lambda: _flat_dataset().split_preferences(True), ConfigError,
         r"cost_threshold=True \(bool\) must be a real number"),
        (lambda: _flat_dataset().split_preferences("10"), ConfigError,
         r"cost_threshold='10' \(str\) must be a real number"),
        (lambda: _flat_dataset().split_preferences(float("nan")), ConfigError,
         r"cost_threshold=nan must be a finite number >= 0"),
        (lambda: _flat_dataset().split_preferences(-1.0), ConfigError,
         r"cost_threshold=-1.0 must be a finite number >= 0"),
    ],
)
def test_bad_dataset_inputs(build: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        build()


def test_an_episode_at_the_time_limit_is_accepted() -> None:
    data = TrajectoryDataset.from_arrays(episodes((100, 3), observation_dim=7), task="BallRun",
                                         action_low=-1, action_high=1)
    assert data.episode_lengths.tolist() == [100, 3]


def test_identical_or_overlapping_preference_sets_are_refused() -> None:
    data = TrajectoryDataset.from_arrays(episodes((3, 4, 3, 5)))
    with pytest.raises(DataError, match="same object"):
        check_preference_sets(data, data)
    copy = TrajectoryDataset.from_arrays(data.to_dict())
    with pytest.raises(DataError, match="episode sets are identical"):
        check_preference_sets(data, copy)
    with pytest.raises(DataError, match=r"overlapping \(1 shared episode\(s\)\); e.g. preferred "
                                        r"episode 1 equals nonpreferred episode 0"):
        check_preference_sets(data.select_episodes([0, 1]), data.select_episodes([1, 2]))
    check_preference_sets(data.select_episodes([0, 1]), data.select_episodes([2, 3]))


def test_a_real_split_passes_the_preference_set_check() -> None:
    from retrofit.data.shipped import default_dataset_path

    full = TrajectoryDataset.from_hdf5(default_dataset_path())
    preferred, nonpreferred = full.split_preferences(20.0, n_preferred=20, n_nonpreferred=5)
    check_preference_sets(preferred, nonpreferred)


def _first_chunk_offset(path: Path, key: str) -> tuple[int, int]:
    with h5py.File(path, "r") as handle:
        info = handle[key].id.get_chunk_info(0)
        return int(info.byte_offset), int(info.size)


def test_corrupt_hdf5_chunk_is_a_data_error(tmp_path: Path) -> None:
    path = TrajectoryDataset.from_arrays(episodes((50, 50))).to_hdf5(tmp_path / "d.hdf5")
    offset, size = _first_chunk_offset(path, "observations")
    raw = bytearray(path.read_bytes())
    raw[offset:offset + size] = b"\xff" * size  # the gzip stream is garbage now
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"observations: in .* cannot be read; the file is corrupt"):
        TrajectoryDataset.from_hdf5(path)


@pytest.mark.parametrize(("value", "message"), [
    ('{"source": "x"', r"retrofit_metadata: the attribute of .* is not valid JSON"),
    ("[1, 2]", r"holds a JSON list, not an object"),
])
def test_bad_metadata_json_is_a_data_error(tmp_path: Path, value: str, message: str) -> None:
    path = TrajectoryDataset.from_arrays(episodes()).to_hdf5(tmp_path / "d.hdf5")
    with h5py.File(path, "r+") as handle:
        handle.attrs["retrofit_metadata"] = value
    with pytest.raises(DataError, match=message):
        TrajectoryDataset.from_hdf5(path)


# ---------------------------------------------------------------------------- saved policies
def _policy(observation_dim: int = 3, action_dim: int = 2) -> TanhGaussianPolicy:
    torch.manual_seed(0)
    return TanhGaussianPolicy(observation_dim, action_dim, np.full(action_dim, -1.0, np.float32),
                              np.full(action_dim, 1.0, np.float32), hidden_sizes=(64, 64))


def test_policy_checksum_catches_damage_in_the_middle_of_the_file(tmp_path: Path) -> None:
    path = save_policy(_policy(), tmp_path / "p.pt")
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle:middle + 200] = bytes((b + 1) % 256 for b in raw[middle:middle + 200])
    path.write_bytes(bytes(raw))
    with pytest.raises(PolicyError, match="checksum mismatch"):
        load_policy(path)


def test_policy_checksum_mismatch_names_the_damage(tmp_path: Path) -> None:
    path = save_policy(_policy(), tmp_path / "p.pt")
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["trunk.0.weight"][0, 0] += 1.0  # one weight changed, file rewritten
    torch.save(payload, path)
    with pytest.raises(PolicyError, match="checksum mismatch"):
        load_policy(path)


def test_policy_round_trip_and_old_file_without_checksum(tmp_path: Path) -> None:
    policy = _policy()
    path = save_policy(policy, tmp_path / "p.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_policy(path)
    for (name, a), (_, b) in zip(policy.state_dict().items(), loaded.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name
    payload = torch.load(path, weights_only=True)
    del payload["sha256"]  # as written by retrofit before checksums
    torch.save(payload, path)
    with pytest.warns(UserWarning, match="has no checksum"):
        load_policy(path)


_BOX = (3, 2, np.full(2, -1.0, np.float32), np.full(2, 1.0, np.float32))
_EVERY_POLICY = {
    "gaussian": lambda: TanhGaussianPolicy(*_BOX),
    "vae": lambda: VAEPolicy(*_BOX),
    "deterministic": lambda: DeterministicPolicy(*_BOX),
    "clipped-gaussian": lambda: ClippedGaussianPolicy(*_BOX),
    "decision-transformer": lambda: DecisionTransformer(
        *_BOX, max_episode_steps=10, embedding_dim=8, layers=1, heads=2, context=3),
}


@pytest.mark.parametrize("kind", sorted(_EVERY_POLICY))
def test_policy_file_written_before_the_dims_rename_loads(tmp_path: Path, kind: str) -> None:
    """Files saved before issue 23 store ``obs_dim``/``act_dim`` (checksummed as stored)."""
    torch.manual_seed(0)
    policy = _EVERY_POLICY[kind]()
    path = save_policy(policy, tmp_path / "old.pt")
    payload = torch.load(path, weights_only=True)
    old_names = {"observation_dim": "obs_dim", "action_dim": "act_dim"}
    config = {old_names.get(key, key): value for key, value in payload["config"].items()}
    assert {"obs_dim", "act_dim"} <= set(config)
    payload["config"] = config
    payload["sha256"] = state_checksum(payload["class"], config, payload["state_dict"])
    torch.save(payload, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_policy(path)
    assert type(loaded) is type(policy)
    assert (loaded.observation_dim, loaded.action_dim) == (3, 2)
    for (name, a), (_, b) in zip(policy.state_dict().items(), loaded.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name


def test_committed_policy_file_with_the_old_dims_names_loads() -> None:
    path = Path(__file__).parents[1] / "docs/results/compare_ballcircle/reference/seed0.pt"
    assert "obs_dim" in torch.load(path, weights_only=True)["config"]
    with pytest.warns(UserWarning, match="has no checksum"):
        loaded = load_policy(path)
    assert (loaded.observation_dim, loaded.action_dim) == (8, 2)


def test_nan_policy_is_not_saved(tmp_path: Path) -> None:
    policy = _policy()
    with torch.no_grad():
        next(policy.parameters())[0, 0] = float("nan")
    with pytest.raises(PolicyError, match="hold NaN or inf; not saving"):
        save_policy(policy, tmp_path / "p.pt")
    assert not any(tmp_path.iterdir())


def test_policy_and_data_sizes_must_match() -> None:
    data = TrajectoryDataset.from_arrays(episodes(observation_dim=3, action_dim=2))
    check_policy_matches_data(_policy(3, 2), data)
    with pytest.raises(PolicyError, match=r"observation_dim: the policy takes observations of "
                                          r"size 5 but the data's are of size 3"):
        check_policy_matches_data(_policy(5, 2), data)
    with pytest.raises(PolicyError, match=r"action_dim: .* size 1 but the data's are of size 2"):
        check_policy_matches_data(_policy(3, 1), data)
    from retrofit.adapters import wrap

    with pytest.raises(PolicyError, match="observation_dim"):
        check_policy_matches_data(wrap(_policy(5, 2)), data)


# ---------------------------------------------------------------------------- command line
@pytest.fixture(scope="module")
def cli_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A feedback file of the shipped BallRun data, a policy for it and one of the wrong size."""
    from retrofit import feedback
    from retrofit.data.shipped import default_dataset_path
    from retrofit.pretrain import action_bounds

    root = tmp_path_factory.mktemp("cli")
    data = TrajectoryDataset.from_hdf5(default_dataset_path())
    fb = feedback.synthesize(data, n_pairs=32, segment_length=8, cost_threshold=20.0, seed=0)
    feedback.save(fb, root / "fb.h5", embed_dataset=False, dataset_path=default_dataset_path())
    torch.manual_seed(0)
    low, high = action_bounds(data)
    save_policy(TanhGaussianPolicy(data.observation_dim, data.action_dim, low, high,
                                   hidden_sizes=(8,)), root / "ref.pt")
    save_policy(TanhGaussianPolicy(data.observation_dim + 1, data.action_dim, low, high,
                                   hidden_sizes=(8,)), root / "wrong.pt")
    (root / "afile").write_text("not a folder")
    (root / "full").mkdir()
    (root / "full" / "demo.json").write_text("{}")
    (root / "taken.pt").write_bytes(b"earlier work")
    return {"root": root, "fb": root / "fb.h5", "ref": root / "ref.pt",
            "wrong": root / "wrong.pt", "data": default_dataset_path()}


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


CLI_CASES = [
    (["demo", "--out", "{root}/d", "--episodes", "0"], "episodes=0 must be an integer >= 1"),
    (["demo", "--out", "{root}/d", "--steps", "0"], "prefine_steps=0 must be an integer >= 1"),
    (["demo", "--out", "{root}/d", "--cost-threshold", "nan"], "cost_threshold=nan must be"),
    (["demo", "--out", "{root}/full"], "is not empty (holds demo.json); pass --overwrite"),
    (["demo", "--out", "{root}/afile/demo"], "is a file, not a folder"),
    (["collect", "BallRun", "--out", "{root}/c.hdf5", "--train-steps", "0"],
     "train_steps=0 (--train-steps) must be an integer >= 1"),
    (["collect", "BallRun", "--out", "{root}/c.hdf5", "--collect-episodes", "0"],
     "n_episodes=0"),
    (["collect", "BallRun", "--out", "{root}/c.hdf5", "--penalties", "abc"],
     "--penalties 'abc': 'abc' is not a number"),
    (["collect", "BallRun", "--out", "{root}/taken.pt"], "already exists; pass --overwrite"),
    (["collect", "BallRun", "--out", "{root}/afile/c.hdf5"], "is a file, not a folder"),
    (["compare", "BallRun", "--out", "{root}/cmp", "--cost-thresholds", "abc"],
     "--cost-thresholds 'abc': 'abc' is not a number"),
    (["compare", "BallRun", "--out", "{root}/cmp", "--seeds", "0,x"], "'x' is not a number"),
    (["compare", "BallRun", "--out", "{root}/cmp", "--checkpoint-every", "-1"],
     "checkpoint_every=-1 must be an integer >= 0"),
    (["compare", "BallRun", "--out", "{root}/cmp", "--safe-reward-fraction", "nan"],
     "safe_reward_fraction=nan must be a finite number"),
    (["compare", "BallRun", "--out", "{root}/afile/cmp", "--methods", "bc-all"],
     "is a file, not a folder"),
    (["feedback", "{data}", "--out", "{root}/taken.pt"], "already exists; pass --overwrite"),
    (["presa", "{ref}", "{fb}", "--out", "{root}/taken.pt"], "already exists; pass --overwrite"),
    (["fit", "{ref}", "{data}", "--out", "{root}/f.pt", "--cost-threshold", "inf"],
     "--cost-threshold=inf must be a finite number >= 0"),
    (["presa", "{ref}", "{fb}", "--out", "{root}/afile/p.pt"], "is a file, not a folder"),
    (["presa", "{ref}", "{fb}", "--out", "{root}/p.pt", "--report-dir", "{root}/full"],
     "--report-dir="),
    (["presa", "{wrong}", "{fb}", "--out", "{root}/p.pt"],
     "observation_dim: the policy takes observations of size 8 but the data's are of size 7"),
    # click's own usage errors are one line too, not a usage box
    (["demo", "--out", "{root}/d", "--episodes", "abc"], "Invalid value for '--episodes'"),
    (["presa", "{ref}", "{fb}", "--out", "{root}/p.pt", "--method", "dpo"],
     "--method 'dpo': use one of bc-safe-seg,"),
    (["compare", "--out", "{root}/cmp"], "Missing argument 'task'"),
]


@pytest.mark.parametrize(("argv", "message"), CLI_CASES)
def test_cli_user_errors_are_one_line_exit_2_and_write_nothing(
    cli_files: dict[str, Path], argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from retrofit.cli import main

    names = {k: str(v) for k, v in cli_files.items()}
    before = _tree(cli_files["root"])
    monkeypatch.setattr(sys, "argv", ["retrofit", *(a.format(**names) for a in argv)])
    tic = time.perf_counter()
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err and "Traceback" not in err
    assert _tree(cli_files["root"]) == before
    assert not any(p.name.startswith(".retrofit") for p in cli_files["root"].rglob("*"))
    assert time.perf_counter() - tic < 20  # refused before any training


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_cli_read_only_out_is_refused_before_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from retrofit.cli import main

    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o555)
    monkeypatch.setattr(sys, "argv", ["retrofit", "demo", "--out", str(locked / "demo")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2 and "cannot write in" in capsys.readouterr().err
    assert not any(locked.iterdir())


def test_read_only_filesystem_check_uses_a_real_write(tmp_path: Path) -> None:
    from retrofit.outputs import check_writable

    check_writable(tmp_path / "new" / "deeper")  # not created, only probed
    assert not any(tmp_path.iterdir())
    with pytest.raises(ConfigError, match="cannot write in '/proc'"):
        check_writable("/proc/retrofit-out")


# ---------------------------------------------------------------------------- compare
@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two small BallRun files (30 safe + 10 unsafe episodes each, different episodes)."""
    from retrofit.data.shipped import default_dataset_path

    full = TrajectoryDataset.from_hdf5(default_dataset_path())
    _, costs = full.episode_returns()
    safe, unsafe = np.flatnonzero(costs < 20), np.flatnonzero(costs >= 20)
    root = tmp_path_factory.mktemp("compare-data")
    paths = []
    for name, pick in (("a.hdf5", slice(0, None, 1)), ("b.hdf5", slice(None, None, -1))):
        chosen = np.concatenate([safe[pick][:30], unsafe[pick][:10]])
        paths.append(full.select_episodes(sorted(chosen.tolist())).to_hdf5(root / name))
    return paths[0], paths[1]


def _tiny_compare(out: Path | str, dataset: Path | str, methods: tuple[str, ...], **kw: Any):
    from retrofit.compare import CompareConfig

    settings = {"task": "BallRun", "methods": methods, "out": Path(out), "dataset": str(dataset),
                "cost_thresholds": (20.0,), "steps": 2, "eval_episodes": 1,
                "checkpoint_every": 0, "bc_steps": 5, "n_preferred": 10, "n_nonpreferred": 4,
                "device": "cpu", "isolate": False, **kw}
    return CompareConfig(**settings)


def _csv_rows(path: Path) -> list[dict[str, str]]:
    import csv

    with open(path) as fh:
        return list(csv.DictReader(fh))


def _scores(rows: list[dict[str, Any]]) -> list[tuple]:
    keys = ("method", "cost_threshold", "seed", "normalized_reward", "normalized_cost", "updates")
    return sorted(tuple(str(r[k]) for k in keys) for r in rows)


def test_compare_merges_runs_refuses_other_data_and_survives_a_move(
    two_datasets: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import shutil

    from retrofit.compare import run_compare

    first_dataset, other_dataset = two_datasets
    quiet = {"log": lambda _: None}
    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    run_compare(_tiny_compare("out", first_dataset, ("bc-safe",)), **quiet)
    run_compare(_tiny_compare("out", first_dataset, ("bc-all",)), **quiet)
    table = _csv_rows(Path("out/results.csv"))
    assert [r["method"] for r in table] == ["bc-safe", "bc-all"]  # earlier row kept
    assert "| bc-safe |" in Path("out/results.md").read_text()

    for bad, field in ((_tiny_compare("out", other_dataset, ("bc-safe",)), "dataset_sha256"),
                       (_tiny_compare("out", first_dataset, ("bc-all",), steps=3), "steps")):
        with pytest.raises(ConfigError, match=rf"other settings \({field}"):
            run_compare(bad, **quiet)
    assert _csv_rows(Path("out/results.csv")) == table

    # move the folder and the data, resume from another working directory: nothing reruns
    shutil.move(str(tmp_path / "a" / "out"), str(tmp_path / "moved"))
    moved_data = shutil.copy(first_dataset, tmp_path / "elsewhere.hdf5")
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "b")
    logs: list[str] = []
    rows = run_compare(_tiny_compare("../moved", moved_data, ("bc-safe", "bc-all")),
                       log=logs.append)
    assert [line.split()[0] for line in logs] == ["skip", "skip"]
    assert _scores(rows) == _scores(table)


def test_second_run_into_a_locked_folder_is_refused_and_a_stale_lock_taken_over(
    two_datasets: tuple[Path, Path], tmp_path: Path,
) -> None:
    from retrofit.compare import run_compare
    from retrofit.outputs import LOCK_NAME, folder_lock

    config = _tiny_compare(tmp_path / "out", two_datasets[0], ("bc-safe",))
    with folder_lock(tmp_path / "out", "retrofit compare"):  # this live process holds it
        with pytest.raises(ConfigError, match=rf"is in use by another `retrofit compare` "
                                              rf"\(pid {os.getpid()} "):
            run_compare(config, log=lambda _: None)
    assert not (tmp_path / "out" / LOCK_NAME).exists()  # released on exit

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = {"pid": dead.pid, "host": __import__("socket").gethostname(), "start": 1,
            "command": "retrofit compare"}
    (tmp_path / "out" / LOCK_NAME).write_text(json.dumps(lock))
    run_compare(config, log=lambda _: None)  # the dead owner's lock is taken over
    assert not (tmp_path / "out" / LOCK_NAME).exists()
    assert len(_csv_rows(tmp_path / "out" / "results.csv")) == 1


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow  # ~1 min on 2 busy cores: three real runs, each cell a fresh process
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_kill_9_of_compare_then_resume_gives_the_same_rows(tmp_path: Path) -> None:
    """SIGKILL the real `retrofit compare` while a cell process trains; the cell process exits
    by itself, the dead run's lock is taken over, and the resumed table equals a clean run's."""
    from retrofit.compare import CompareConfig, run_compare

    argv = [sys.executable, "-c", "from retrofit.cli import main; main()", "compare", "BallRun",
            "--methods", "bc-safe,bc-all", "--thresholds", "20", "--steps", "2", "--bc-steps",
            "5", "--episodes", "1", "--checkpoint-every", "0", "--device", "cpu"]
    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([*argv, "--out", str(out)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    cells = out / "cells"
    deadline = time.monotonic() + 240
    while (time.monotonic() < deadline and proc.poll() is None
           and not (cells.is_dir() and any(cells.glob("*.json")))):
        time.sleep(0.05)
    workers: list[int] = []
    while time.monotonic() < deadline and not workers and proc.poll() is None:
        workers = [p for p in _children(proc.pid) if _alive(p)]
        time.sleep(0.02)
    assert proc.poll() is None and workers, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = sorted(p.name for p in cells.glob("*.json"))
    assert done_before == ["bc-safe__k20__s0.json"]
    assert (out / ".retrofit.lock").is_file()  # left behind by the dead run
    gone_by = time.monotonic() + 10
    while time.monotonic() < gone_by and any(_alive(p) for p in workers):
        time.sleep(0.1)
    assert not any(_alive(p) for p in workers), "a cell process outlived its killed parent"

    resumed = subprocess.run([*argv, "--out", str(out)], env=env, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count("skip ") == 1 and resumed.stdout.count("run   ") == 1
    clean = run_compare(CompareConfig(
        task="BallRun", methods=("bc-safe", "bc-all"), out=tmp_path / "clean",
        cost_thresholds=(20.0,), steps=2, bc_steps=5, eval_episodes=1, checkpoint_every=0,
        device="cpu"), log=lambda _: None)
    assert _scores(_csv_rows(out / "results.csv")) == _scores(clean)


ORPHAN_SCRIPT = """
import multiprocessing, os, sys, time
from retrofit.compare.executors import exit_with_parent

def cell(parent):
    import threading
    threading.Thread(target=exit_with_parent, args=(parent, 0.05), daemon=True).start()
    time.sleep(60)

if __name__ == "__main__":
    child = multiprocessing.get_context("spawn").Process(target=cell, args=(os.getpid(),))
    child.start()
    print(child.pid, flush=True)
    time.sleep(60)
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_a_cell_process_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "orphan.py"
    script.write_text(ORPHAN_SCRIPT)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert _alive(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child)


# ---------------------------------------------------------------------------- collection
TINY_COLLECT = {"penalties": (0.0,), "budgets": (0.5,), "switch_fraction": 0.5,
                "train_steps": 64, "checkpoints": (0.0, 1.0), "noise_levels": (0.0, 0.3),
                "progress": False}


def test_interrupted_collection_resumes_from_its_blocks_to_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from retrofit.collect import collector
    from retrofit.collect.collector import collect_dataset

    monkeypatch.setattr(collector, "ROLLOUT_BLOCK", 2)
    clean = collect_dataset("BallRun", tmp_path / "clean.hdf5", 5, seed=7, **TINY_COLLECT)
    real_rollout = collector.rollout_episode
    calls: list[int] = []

    def rollout(*args: Any, **kwargs: Any) -> dict[str, np.ndarray]:
        calls.append(int(args[3][1]))  # the episode index in its seed [seed, i]
        if calls == [0, 1, 2, 3]:
            raise KeyboardInterrupt  # Ctrl-C in episode 3, inside the second block
        return real_rollout(*args, **kwargs)

    monkeypatch.setattr(collector, "rollout_episode", rollout)
    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        collect_dataset("BallRun", tmp_path / "resumed.hdf5", 5, seed=7, cache_dir=cache,
                        **TINY_COLLECT)
    assert not (tmp_path / "resumed.hdf5").exists()
    assert len(list(cache.glob("rollouts/*/episodes*.npz"))) == 1  # episodes 0-1 kept
    calls.clear()
    calls.append(-1)  # no more interruptions
    resumed = collect_dataset("BallRun", tmp_path / "resumed.hdf5", 5, seed=7, cache_dir=cache,
                              **TINY_COLLECT)
    assert calls[1:] == [2, 3, 4]  # the finished block was not rolled out again
    assert (tmp_path / "resumed.hdf5").read_bytes() == (tmp_path / "clean.hdf5").read_bytes()
    assert resumed.metadata == clean.metadata


def test_cells_from_before_dataset_hashes_are_reused_only_for_the_same_file(tmp_path: Path) -> None:
    from retrofit.compare.harness import cell_settings
    from retrofit.compare.manifest import check_reusable

    config = _tiny_compare(tmp_path, "data.hdf5", ("bc-all",))
    expected = cell_settings(config, "bc-all", "ab" * 32)
    legacy = {k: v for k, v in expected.items() if k != "dataset_sha256"}
    cell = tmp_path / "cell.json"
    cell.write_text(json.dumps({"settings": {**legacy, "dataset": "data.hdf5"}}))
    check_reusable(cell, expected, str(Path("data.hdf5").absolute()))
    with pytest.raises(ConfigError, match="other settings"):
        check_reusable(cell, expected, str(tmp_path / "other.hdf5"))


def test_feedback_refuses_a_bool_threshold_and_bad_metadata_json(tmp_path: Path) -> None:
    from retrofit import feedback
    from retrofit.data.shipped import default_dataset_path

    data = TrajectoryDataset.from_hdf5(default_dataset_path())
    with pytest.raises(DataError, match=r"cost_threshold=True \(bool\) must be a real number"):
        feedback.synthesize(data, n_pairs=8, segment_length=8, cost_threshold=True)
    fb = feedback.synthesize(data, n_pairs=32, segment_length=8, cost_threshold=20.0)
    path = tmp_path / "fb.h5"
    feedback.save(fb, path, embed_dataset=False, dataset_path=default_dataset_path())
    with h5py.File(path, "r+") as handle:
        handle.attrs["metadata"] = "{not json"
    with pytest.raises(DataError, match=r"metadata: the attribute of .* is not valid JSON"):
        feedback.load(path)


def test_two_python_fits_into_one_log_dir_are_refused_while_the_first_lives(
    tmp_path: Path,
) -> None:
    """A live process holding ``log_dir`` (here: another Python process) makes
    ``Retrofitter(log_dir=...).fit`` refuse before writing; once it is gone, the fit runs."""
    from retrofit import Retrofitter
    from retrofit.outputs import LOCK_NAME

    log_dir = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom retrofit.outputs import folder_lock\n"
         f"with folder_lock({str(log_dir)!r}, 'Retrofitter.fit'):\n"
         "    print('held', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        data = TrajectoryDataset.from_arrays(episodes(lengths=(4,) * 6), action_low=-1,
                                             action_high=1)
        preferred, nonpreferred = data.select_episodes([0, 1, 2]), data.select_episodes([3, 4, 5])
        policy = TanhGaussianPolicy(3, 2, -np.ones(2), np.ones(2), hidden_sizes=(8,))
        fitter = Retrofitter(policy, seed=0, progress=False, log_dir=log_dir, batch_size=4)
        with pytest.raises(ConfigError, match=rf"in use by another `Retrofitter.fit` \(pid "
                                              rf"{holder.pid} "):
            fitter.fit(preferred, nonpreferred, steps=2)
        assert sorted(p.name for p in log_dir.iterdir()) == [LOCK_NAME]  # nothing written
    finally:
        holder.kill()
        holder.wait()
    fitter.fit(preferred, nonpreferred, steps=2)  # the dead holder's lock is taken over
    assert (log_dir / "config.json").is_file() and not (log_dir / LOCK_NAME).exists()
