"""Feedback synthesis follows the paper: segments in one episode, reward preference, rescaled κ."""

import numpy as np
import pytest

from retrofit import feedback
from retrofit.errors import DataError
from retrofit.feedback import SAFE, UNSAFE, segment_threshold, valid_segment_starts
from tests.feedback.helpers import make_dataset


@pytest.fixture
def dataset():
    return make_dataset()


def synth(dataset, **kw):
    args = dict(n_pairs=200, segment_length=4, cost_threshold=20.0, seed=0,
                max_episode_steps=100)
    args.update(kw)
    return feedback.synthesize(dataset, **args)


def test_valid_starts_stay_inside_episodes():
    starts = valid_segment_starts(np.array([0, 12, 17, 27]), 5)
    assert starts.tolist() == [*range(0, 8), 12, *range(17, 23)]
    assert valid_segment_starts(np.array([0, 3]), 5).size == 0


def test_segment_threshold_rescaled_by_length():
    assert segment_threshold(20.0, 64, 100) == pytest.approx(12.8)
    assert segment_threshold(40.0, 32, 1000) == pytest.approx(1.28)


def test_pairs_ordered_by_reward_and_labelled_by_rescaled_cost(dataset):
    fb = synth(dataset)
    assert len(fb) == 200 and fb.segment_length == 4
    rewards, costs = fb.segment_returns()
    assert np.all(rewards[:, 0] > rewards[:, 1])  # strict: ties were resampled
    # κ_seg = 20 * 4 / 100 = 0.8: a segment of an odd episode costs 4 -> unsafe, else 0 -> safe
    segment_cost_threshold = fb.metadata["segment_cost_threshold"]
    assert segment_cost_threshold == pytest.approx(0.8)
    assert np.array_equal(fb.safety == SAFE, costs <= segment_cost_threshold)
    assert set(np.unique(fb.safety)) == {SAFE, UNSAFE}
    idx = fb.segment_indices()
    episode = np.searchsorted(dataset.episode_starts, idx, side="right") - 1
    assert np.all(episode == episode[..., :1])  # every segment inside one episode


def test_threshold_equality_counts_as_unsafe(dataset):
    # κ_seg = 100 * 4 / 100 = 4 equals an odd episode's segment cost: unsafe, as an episode at
    # exactly κ is (retrofit.thresholds.is_safe_trajectory; PREFINE §3, §5.1: safe is < κ)
    fb = synth(dataset, cost_threshold=100.0)
    costs = np.asarray(dataset.costs)
    seg_costs = np.array([[costs[s:s + 4].sum() for s in pair] for pair in fb.starts])
    assert np.array_equal(fb.safety == UNSAFE, seg_costs == 4.0) and fb.n_unsafe > 0
    with pytest.raises(DataError, match="every segment is safe"):
        synth(dataset, cost_threshold=101.0)  # κ_seg = 4.04: every segment is below it


def test_deterministic_given_seed(dataset):
    a, b, c = synth(dataset), synth(dataset), synth(dataset, seed=1)
    assert np.array_equal(a.starts, b.starts) and np.array_equal(a.safety, b.safety)
    assert not np.array_equal(a.starts, c.starts)


def test_task_gives_max_episode_steps_and_missing_task_is_an_error(dataset):
    with pytest.raises(DataError, match="max_episode_steps"):
        feedback.synthesize(dataset, n_pairs=10, segment_length=4, cost_threshold=20.0)


def test_random_tie_breaking_keeps_ties():
    ds = make_dataset(lengths=(6, 6))
    ds.rewards[:] = 1.0  # every segment ties
    with pytest.raises(DataError, match="ties"):
        synth(ds, n_pairs=20)
    fb = synth(ds, n_pairs=50, ties="random")
    assert fb.metadata["n_tied_pairs_ordered_at_random"] == 50


def test_label_noise_flips_the_requested_fraction(dataset):
    clean = synth(dataset)
    noisy = synth(dataset, label_noise=0.1)
    assert np.array_equal(clean.starts, noisy.starts)
    assert (clean.safety != noisy.safety).sum() == 40  # 10% of 400 segment labels
    assert noisy.metadata["label_noise"] == 0.1


def test_segment_longer_than_every_episode(dataset):
    with pytest.raises(DataError, match="longer than every episode"):
        synth(dataset, segment_length=13)


@pytest.mark.parametrize("kw", [dict(n_pairs=0), dict(segment_length=0),
                                dict(cost_threshold=-1.0), dict(ties="drop")])
def test_bad_arguments(dataset, kw):
    with pytest.raises(DataError):
        synth(dataset, **kw)


def test_variants(dataset):
    fb = synth(dataset)
    y = fb.safety
    filt = fb.filtered()
    assert np.all(filt.safety[:, 0] == SAFE)
    assert len(filt) == int((y[:, 0] == SAFE).sum())
    uni = fb.unified()
    swapped = (y[:, 0] == UNSAFE) & (y[:, 1] == SAFE)
    assert np.array_equal(uni.starts[swapped], fb.starts[swapped][:, ::-1])
    assert not np.any((uni.safety[:, 0] == UNSAFE) & (uni.safety[:, 1] == SAFE))
    binary = fb.binary()
    assert np.all(binary.safety[:, 1] == UNSAFE)
    assert np.array_equal(binary.safety[:, 0] == SAFE, y[:, 0] == SAFE)
    assert "filtered" in filt.metadata["variants"]
