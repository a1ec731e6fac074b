"""DSRL's files are checked against a SHA-256 (issue 22): the table's where one is known, else
the digest recorded beside the file the first time retrofit reads it. A local file stands where
DSRL's would go (``$DSRL_DATASET_DIR``); no network."""

from __future__ import annotations

import json
import pathlib

import pytest

from retrofit.data import TrajectoryDataset
from retrofit.data.dsrl_files import DIGESTS_NAME, check_dsrl_file, dsrl_file, sha256_of
from retrofit.data.shipped import default_dataset_path
from retrofit.errors import DataError


@pytest.fixture(scope="module")
def shipped() -> TrajectoryDataset:
    return TrajectoryDataset.from_hdf5(default_dataset_path("OfflineBallRun-v0"))


def test_first_read_records_the_digest_and_a_changed_file_is_refused(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch,
        shipped: TrajectoryDataset) -> None:
    monkeypatch.setenv("DSRL_DATASET_DIR", str(tmp_path))
    local = tmp_path / dsrl_file("BallRun").filename
    shipped.select_episodes(list(range(20))).to_hdf5(local)
    first = TrajectoryDataset.from_dsrl("BallRun", download=False)
    record = tmp_path / DIGESTS_NAME
    assert json.loads(record.read_text()) == {local.name: sha256_of(local)}
    assert len(TrajectoryDataset.from_dsrl("BallRun", download=False)) == len(first)

    shipped.select_episodes(list(range(1, 21))).to_hdf5(local)  # another file, same name
    with pytest.raises(DataError, match=rf"{local.name}: SHA-256 .* recorded in .*{DIGESTS_NAME}"):
        TrajectoryDataset.from_dsrl("BallRun", download=False)


def test_a_known_digest_is_checked_and_nothing_is_recorded(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "file.hdf5"
    path.write_bytes(b"not DSRL's bytes")
    with pytest.raises(DataError, match="differs from DSRL's"):
        check_dsrl_file(path, "0" * 64)
    check_dsrl_file(path, sha256_of(path))
    assert not (tmp_path / DIGESTS_NAME).exists()


def test_an_unreadable_record_names_itself(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "file.hdf5"
    path.write_bytes(b"bytes")
    (tmp_path / DIGESTS_NAME).write_text("{not json")
    with pytest.raises(DataError, match=rf"{DIGESTS_NAME} is not readable JSON.*delete it"):
        check_dsrl_file(path, None)
