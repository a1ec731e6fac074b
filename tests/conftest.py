"""Shared test setup: one torch thread, a seeded ``rng`` fixture.

bullet-safety-gym is imported by the tests that need it through ``retrofit._compat``, whose
``patch_bullet_safety_gym`` makes the import work under pytest's output capture (no ``-s``);
``tests/test_envs.py`` checks that in a fresh interpreter.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest


def pytest_sessionstart(session: pytest.Session) -> None:
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.set_num_threads(1)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
