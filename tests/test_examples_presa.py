"""The PreSa examples run end to end on the shipped data at a tiny budget (real env, real files)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture()
def presa_example(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The ``presa_ballrun`` example module, importable as the examples import it."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    sys.modules.pop("presa_ballrun", None)
    import presa_ballrun

    return presa_ballrun


def test_ballcircle_uses_its_own_shipped_dataset(presa_example, tmp_path: Path) -> None:
    """Task BallCircle without --dataset trains on the BallCircle file, not BallRun's."""
    args = presa_example.Args(
        task="OfflineBallCircle-v0", n_pairs=40, pretrain_steps=3, steps=3, episodes=1,
        out=str(tmp_path),
    )
    report = presa_example.main(args)
    assert "BallCircle" in Path(args.dataset).name
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["task"] == "OfflineBallCircle-v0" and saved["cost_threshold"] == 20
    assert saved == report
    for name in ("feedback.h5", "reference.pt", "presa.pt", "presa/metrics.csv"):
        assert (tmp_path / name).is_file(), name


def test_unknown_reference_kind_is_refused(presa_example, tmp_path: Path) -> None:
    """A misspelt --reference stops with a message naming both choices."""
    args = presa_example.Args(reference="best", n_pairs=40, out=str(tmp_path))
    with pytest.raises(SystemExit, match="'segments' or 'high-reward'"):
        presa_example.main(args)
    assert not (tmp_path / "feedback.h5").exists()  # refused before any work
