"""``retrofit collect`` without ``--cache-dir`` checkpoints beside its output, so a killed
collection resumes when run again (issue 22). Real BallRun rollouts at toy size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrofit.collect import collector
from retrofit.collect.collector import collect_dataset, default_cache_dir

TINY = {"penalties": (0.0,), "budgets": (0.5,), "switch_fraction": 0.5, "train_steps": 64,
        "checkpoints": (0.0, 1.0), "noise_levels": (0.0, 0.3), "progress": False}


def test_default_cache_is_beside_the_output(tmp_path: Path) -> None:
    assert default_cache_dir(tmp_path / "d.hdf5") == tmp_path / "d.hdf5.collect-cache"
    assert default_cache_dir(tmp_path / "data") == tmp_path / "data" / "collect-cache"


def test_an_interrupted_collection_without_cache_dir_resumes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collector, "ROLLOUT_BLOCK", 2)
    clean = collect_dataset("BallRun", tmp_path / "clean.hdf5", 5, seed=7, **TINY)
    assert not default_cache_dir(tmp_path / "clean.hdf5").exists()  # removed once written
    real_rollout = collector.rollout_episode
    calls: list[int] = []

    def rollout(*args: Any, **kwargs: Any) -> dict[str, np.ndarray]:
        calls.append(int(args[3][1]))  # the episode index in its seed [seed, i]
        if calls == [0, 1, 2, 3]:
            raise KeyboardInterrupt  # Ctrl-C in episode 3, inside the second block
        return real_rollout(*args, **kwargs)

    monkeypatch.setattr(collector, "rollout_episode", rollout)
    out = tmp_path / "resumed.hdf5"
    with pytest.raises(KeyboardInterrupt):
        collect_dataset("BallRun", out, 5, seed=7, **TINY)
    assert not out.exists()
    assert len(list(default_cache_dir(out).glob("rollouts/*/episodes*.npz"))) == 1
    calls[:] = [-1]  # no more interruptions
    resumed = collect_dataset("BallRun", out, 5, seed=7, **TINY)
    assert calls[1:] == [2, 3, 4]  # the finished block was not rolled out again
    assert out.read_bytes() == (tmp_path / "clean.hdf5").read_bytes()
    assert resumed.metadata == clean.metadata
    assert not default_cache_dir(out).exists()
