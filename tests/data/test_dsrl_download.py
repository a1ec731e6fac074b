"""DSRL's files through huggingface_hub: the real library's cache, no network, no mocks.

The cache is laid out as ``huggingface_hub`` lays it out (``datasets--YYY-45--DSRL/blobs``,
``refs/main``, ``snapshots/<commit>/<file>`` linking to the blob) and holds a small DSRL-format
file made by stepping the real ``OfflineCarRun-v0`` and written with our HDF5 writer. The loading
runs in a fresh interpreter started with ``HF_HUB_OFFLINE=1`` (``huggingface_hub`` reads it at
import), as a user without network would run it.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from retrofit.data import DSRL_KEYS, TrajectoryDataset
from retrofit.data.dsrl_files import (
    DSRL_FILES,
    DSRL_REPO_ID,
    DSRL_REVISION,
    dsrl_file,
    fetch_dsrl_file,
    sha256_of,
)
from retrofit.envs import make_env, step_env
from retrofit.errors import DataError
from retrofit.tasks import TASKS, task_info

TASK = "OfflineCarRun-v0"
FILE = "SafetyCarRun-v0-40-651.hdf5"
COMMIT = "0123456789abcdef0123456789abcdef01234567"  # any 40-hex id: the snapshot's name


def car_run_data(steps: tuple[int, ...] = (6, 9), seed: int = 0) -> TrajectoryDataset:
    """A few short CarRun episodes from the real environment (random actions)."""
    env = make_env(TASK)
    env.action_space.seed(seed)
    episodes = []
    for i, length in enumerate(steps):
        obs, _ = env.reset(seed=seed + i)
        cols: dict[str, list] = {k: [] for k in DSRL_KEYS}
        for t in range(length):
            action = env.action_space.sample()
            nxt, reward, cost, terminated, truncated, _ = step_env(env, action)
            last = terminated or truncated or t == length - 1
            for key, value in zip(
                DSRL_KEYS,
                (obs, nxt, action, reward, cost, terminated, last and not terminated),
                strict=True,
            ):
                cols[key].append(value)
            obs = nxt
            if last:
                break
        episodes.append({k: np.asarray(v) for k, v in cols.items()})
    env.close()
    return TrajectoryDataset.from_trajectories(episodes, task=TASK)


def lay_out_hub_cache(hub: pathlib.Path, source: pathlib.Path) -> pathlib.Path:
    """Put ``source`` into ``hub`` as huggingface_hub's cache holds DSRL's CarRun file."""
    repo = hub / ("datasets--" + DSRL_REPO_ID.replace("/", "--"))
    blob = repo / "blobs" / sha256_of(source)
    blob.parent.mkdir(parents=True)
    blob.write_bytes(source.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / DSRL_REVISION).write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT / FILE
    snapshot.parent.mkdir(parents=True)
    snapshot.symlink_to(os.path.relpath(blob, snapshot.parent))
    return snapshot


_LOAD = """
import json, sys
import numpy as np
from retrofit.data import TrajectoryDataset
from retrofit.errors import DataError
out = {}
ds = TrajectoryDataset.from_dsrl("OfflineCarRun-v0")
np.savez(sys.argv[1], **ds.to_dict())
out["source"] = ds.metadata["source"]
try:
    TrajectoryDataset.from_dsrl("CarRun", cache_dir=sys.argv[2])
except DataError as exc:
    out["error"] = str(exc)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One offline interpreter: load from the laid-out cache, then try an empty cache."""
    root = tmp_path_factory.mktemp("hub")
    data = car_run_data()
    made = data.to_hdf5(root / "made.hdf5")
    snapshot = lay_out_hub_cache(root / "hub", made)
    (root / "empty_hub").mkdir()
    (root / "dsrl_folder").mkdir()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(root / "hub"),
        "DSRL_DATASET_DIR": str(root / "dsrl_folder"),  # empty: the hub cache must be used
        "OMP_NUM_THREADS": "1",
    }
    env.pop("HF_ENDPOINT", None)
    proc = subprocess.run(
        [sys.executable, "-c", _LOAD, str(root / "loaded.npz"), str(root / "empty_hub")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        **result, "data": data, "snapshot": snapshot, "folder": root / "dsrl_folder",
        "loaded": dict(np.load(root / "loaded.npz")),
    }


def test_from_dsrl_loads_the_file_from_huggingface_hub_cache_offline(offline_run: dict) -> None:
    assert pathlib.Path(offline_run["source"]) == offline_run["snapshot"]
    expected = offline_run["data"].to_dict()
    assert set(offline_run["loaded"]) == set(expected)
    for key in DSRL_KEYS:
        np.testing.assert_array_equal(offline_run["loaded"][key], expected[key], err_msg=key)


def test_offline_without_the_file_names_file_url_and_folder(offline_run: dict) -> None:
    message = offline_run["error"]
    assert FILE in message
    assert f"https://huggingface.co/datasets/YYY-45/DSRL/resolve/{DSRL_REVISION}/{FILE}" in message
    assert str(offline_run["folder"]) in message


def test_sha256_is_checked(tmp_path: pathlib.Path) -> None:
    made = car_run_data(steps=(3,)).to_hdf5(tmp_path / "made.hdf5")
    snapshot = lay_out_hub_cache(tmp_path / "hub", made)
    good = sha256_of(made)
    # a commit id as revision: huggingface_hub finds the snapshot without asking the network
    path = fetch_dsrl_file(TASK, revision=COMMIT, cache_dir=tmp_path / "hub", sha256=good)
    assert path == snapshot
    bad = "0" * 64
    with pytest.raises(DataError, match=rf"SHA-256 {good} differs from DSRL's {bad}"):
        fetch_dsrl_file(TASK, revision=COMMIT, cache_dir=tmp_path / "hub", sha256=bad)


def test_table_has_every_task_with_dsrls_file_name() -> None:
    from dsrl import infos  # dsrl 0.1.0: the same file names, on the old host

    assert set(DSRL_FILES) == set(TASKS)
    names = {}
    for short, url in infos.DATASET_URLS.items():
        if "MetaDrive" not in url:
            names[task_info(short).env_id] = url.rsplit("/", 1)[1]
    assert names == {env_id: entry.filename for env_id, entry in DSRL_FILES.items()}
    assert dsrl_file("CarRun").filename == FILE
    with pytest.raises(DataError, match="task="):
        dsrl_file("NoSuchTask")


def test_compare_harness_takes_dsrls_own_file(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retrofit.compare.harness import CompareConfig
    from retrofit.compare.reference import load_dataset

    made = car_run_data(steps=(4, 5)).to_hdf5(tmp_path / FILE)
    monkeypatch.setenv("DSRL_DATASET_DIR", str(tmp_path))  # the file is in DSRL's folder
    config = CompareConfig(task="CarRun", methods=("prefine",), out=tmp_path, dataset="dsrl")
    dataset, source = load_dataset(config)
    assert source == str(made) and dataset.task == TASK and dataset.n_episodes == 2
