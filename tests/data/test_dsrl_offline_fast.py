"""``TrajectoryDataset.from_dsrl`` without a network gives its clear error at once (issue 25): it
spent ≈ 23 s in huggingface_hub's retries first. Real huggingface_hub, real sockets, no mocks."""

from __future__ import annotations

import time

import pytest

from retrofit.data import TrajectoryDataset
from retrofit.data.dsrl_files import hub_reachable
from retrofit.errors import DataError

FILE = "SafetyBallRun-v0-80-940.hdf5"


@pytest.fixture
def empty_folders(tmp_path, monkeypatch):
    """Empty DSRL folder and hub cache, no proxy, HF_HUB_OFFLINE unset."""
    (tmp_path / "dsrl").mkdir()
    monkeypatch.setenv("DSRL_DATASET_DIR", str(tmp_path / "dsrl"))
    for name in ("HF_HUB_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def load_and_time(tmp_path) -> tuple[str, float]:
    tic = time.perf_counter()
    with pytest.raises(DataError) as info:
        TrajectoryDataset.from_dsrl("BallRun", cache_dir=tmp_path / "hub")
    return str(info.value), time.perf_counter() - tic


def test_unreachable_hub_fails_at_once_with_the_clear_error(empty_folders, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")  # RFC 2606: never resolves
    assert not hub_reachable()
    message, seconds = load_and_time(empty_folders)
    assert seconds < 5, f"took {seconds:.1f} s"
    assert f"https://hub.invalid/datasets/YYY-45/DSRL/resolve/main/{FILE}" in message
    assert str(empty_folders / "dsrl") in message and "h5path=" in message


def test_this_machine_without_internet_fails_at_once(empty_folders, monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    if hub_reachable():
        pytest.skip("huggingface.co is reachable from here: the call would download the file")
    message, seconds = load_and_time(empty_folders)
    assert seconds < 5, f"took {seconds:.1f} s"
    assert f"https://huggingface.co/datasets/YYY-45/DSRL/resolve/main/{FILE}" in message
