"""Feedback files: round trip, atomic writes, and clear errors for bad human-made input."""

import h5py
import numpy as np
import pytest

from retrofit import feedback
from retrofit.errors import DataError
from retrofit.feedback import Feedback
from tests.feedback.helpers import make_dataset


@pytest.fixture
def dataset():
    return make_dataset()


@pytest.fixture
def fb(dataset):
    return feedback.synthesize(dataset, n_pairs=50, segment_length=4, cost_threshold=20.0,
                               seed=3, max_episode_steps=100)


def _same(a, b):
    assert np.array_equal(a.starts, b.starts)
    assert np.array_equal(a.safety, b.safety)
    assert a.segment_length == b.segment_length
    assert a.cost_threshold == b.cost_threshold
    assert a.metadata == b.metadata


def test_round_trip_embedded(fb, tmp_path):
    path = feedback.save(fb, tmp_path / "fb.h5")
    back = feedback.load(path)
    _same(fb, back)
    assert np.array_equal(back.dataset.observations, fb.dataset.observations)
    assert np.array_equal(back.dataset.episode_starts, fb.dataset.episode_starts)
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_round_trip_by_reference(fb, dataset, tmp_path):
    dataset.to_hdf5(tmp_path / "data.hdf5")
    path = feedback.save(fb, tmp_path / "sub" / "fb.h5", embed_dataset=False,
                   dataset_path=tmp_path / "data.hdf5")
    with h5py.File(path) as handle:
        assert "dataset" not in handle
        assert handle.attrs["dataset_path"] == "../data.hdf5"
    _same(fb, feedback.load(path))
    _same(fb, feedback.load(path, dataset=dataset))


def test_wrong_dataset_is_caught(fb, tmp_path):
    path = feedback.save(fb, tmp_path / "fb.h5")
    with pytest.raises(DataError, match="different dataset"):
        feedback.load(path, dataset=make_dataset(seed=1))


def test_save_by_reference_needs_a_path(fb, tmp_path):
    with pytest.raises(DataError, match="dataset_path"):
        feedback.save(fb, tmp_path / "fb.h5", embed_dataset=False)


def test_hand_made_human_file(dataset, tmp_path):
    dataset.to_hdf5(tmp_path / "data.hdf5")
    with h5py.File(tmp_path / "human.h5", "w") as handle:
        handle["starts"] = np.array([[0, 12], [17, 29]])
        handle["safety"] = np.array([[1, -1], [1, 1]], dtype=np.int8)
        handle.attrs["format"] = feedback.FORMAT
        handle.attrs["segment_length"] = 4
        handle.attrs["dataset_path"] = "data.hdf5"
    fb = feedback.load(tmp_path / "human.h5")
    assert len(fb) == 2 and fb.cost_threshold is None and fb.n_unsafe == 1


@pytest.mark.parametrize("problem, match", [
    ("format", "format"), ("starts", "/starts"), ("no_dataset", "neither"),
])
def test_malformed_files(dataset, tmp_path, problem, match):
    with h5py.File(tmp_path / "bad.h5", "w") as handle:
        if problem != "starts":
            handle["starts"] = np.array([[0, 12]])
        handle["safety"] = np.array([[1, -1]], dtype=np.int8)
        handle.attrs["format"] = "something-else" if problem == "format" else feedback.FORMAT
        handle.attrs["segment_length"] = 4
    with pytest.raises(DataError, match=match):
        feedback.load(tmp_path / "bad.h5")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such"):
        feedback.load(tmp_path / "nope.h5")


@pytest.mark.parametrize("starts, safety, match", [
    ([[0, 40]], [[1, -1]], "out of range"),
    ([[-1, 0]], [[1, -1]], "out of range"),
    ([[10, 0]], [[1, -1]], "crosses the end of episode 0"),
    ([[0, 12]], [[1, 0]], "must be \\+1"),
    ([[0, 12]], [[1, 1]], "all 2 segment labels are safe"),
    ([[0, 12]], [[-1, -1]], "unsafe"),
    ([[0, 12]], [[1, -1], [1, -1]], "shape"),
    ([0, 12], [1, -1], "shape"),
    ([[0.0, 12.0]], [[1, -1]], "integers"),
])
def test_validation_errors(dataset, starts, safety, match):
    with pytest.raises(DataError, match=match):
        Feedback(dataset, np.array(starts), np.array(safety), 4)


def test_one_class_allowed_when_asked(dataset):
    fb = Feedback(dataset, np.array([[0, 12]]), np.array([[1, 1]]), 4,
                  require_both_classes=False)
    assert fb.n_safe == 2
