"""``retrofit compare`` checks every method's overrides before anything trains (issue 22): a
bad value (``--set prefine.beta=NaN``) used to be found only after π_ref had trained."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

from retrofit.data.dataset import TrajectoryDataset
from retrofit.data.shipped import default_dataset_path


def test_compare_refuses_a_bad_override_before_the_reference_trains(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from retrofit.cli import main

    data = TrajectoryDataset.from_hdf5(default_dataset_path("OfflineBallRun-v0"))
    data.select_episodes(list(range(100))).to_hdf5(tmp_path / "data.h5")
    out = tmp_path / "compare"
    monkeypatch.setattr(sys, "argv", [
        "retrofit", "compare", "BallRun", "--methods", "presa,prefine", "--dataset",
        str(tmp_path / "data.h5"), "--out", str(out), "--set", "prefine.beta=NaN",
        "--bc-steps", "5", "--steps", "2", "--episodes", "1", "--in-process"])
    with warnings.catch_warnings(), pytest.raises(SystemExit) as stopped:
        warnings.simplefilter("ignore")
        main()
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert stopped.value.code == 2 and len(lines) == 1, err
    assert "'prefine'" in lines[0] and "beta=nan" in lines[0]
    assert not (out / "reference").exists() and not (out / "cells").exists()
