"""One floor for a standard deviation used as a divisor (issue 23): every standardiser uses
``retrofit.scaling.safe_scale``, and nobody writes the rule by hand again."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

import retrofit
from retrofit.policies.clipped_gaussian import ClippedGaussianPolicy
from retrofit.scaling import SCALE_FLOOR, safe_scale

ROOT = Path(retrofit.__file__).parent


def test_entries_below_the_floor_count_as_one_and_the_rest_are_kept() -> None:
    std = np.array([0.0, 5e-7, 1e-6, 0.3], dtype=np.float32)
    out = safe_scale(std)
    assert out.tolist() == [1.0, 1.0, np.float32(1e-6), np.float32(0.3)]
    assert out.dtype == np.float32 and std[0] == 0.0  # a new array; dtype kept
    assert SCALE_FLOOR == 1e-6


def test_a_constant_observation_is_not_divided_by_zero() -> None:
    policy = ClippedGaussianPolicy(2, 1, [-1.0], [1.0], hidden_sizes=(4,), fixed_std=0.2)
    policy.set_observation_normalizer(np.array([1.0, 2.0]), np.array([0.0, 4.0]))
    normed = policy.normalize_observations(torch.tensor([[3.0, 10.0]]))
    assert torch.allclose(normed, torch.tensor([[2.0, 2.0]]))


def test_no_module_writes_the_floor_by_hand() -> None:
    pattern = re.compile(r"<\s*1e-6\s*[,\]]")
    offenders = [str(path.relative_to(ROOT)) for path in ROOT.rglob("*.py")
                 if path.name != "scaling.py" and pattern.search(path.read_text())]
    assert offenders == []
    assert pattern.search("np.where(std < 1e-6, 1.0, std)")  # the scan sees the old form
