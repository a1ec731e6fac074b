"""``benchmarks/presa_table.py`` end to end at toy size: rows, curve, plot, resume and merge."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from retrofit.data.shipped import default_dataset_path

ROOT = Path(__file__).resolve().parents[1]
TASK = "OfflineBallCircle-v0"


def _run(tmp: Path, out: str, *extra: str) -> str:
    cmd = [
        sys.executable, str(ROOT / "benchmarks" / "presa_table.py"),
        "--dataset", str(default_dataset_path(TASK)), "--task", TASK, "--cost-threshold", "20",
        "--n-pairs", "40", "--pretrain-steps", "3", "--steps", "4", "--episodes", "1",
        "--shared-reference", "--out", str(tmp / out), "--runs", str(tmp / "runs"), *extra,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_split_runs_merge_into_one_table_with_a_curve(tmp_path: Path) -> None:
    stem = "presa_BallCircle_20"
    _run(tmp_path, "a", "--seeds", "0", "--methods", "presa", "bc-safe-seg",
         "--checkpoint-every", "2")
    _run(tmp_path, "b", "--seeds", "1", "--methods", "presa", "--checkpoint-every", "2")
    rows = _rows(tmp_path / "a" / f"{stem}.csv")
    assert list(rows[0]) == ["method", "task", "cost_threshold", "seed", "normalized_reward",
                             "normalized_cost"]
    assert [(r["method"], r["seed"]) for r in rows] == [("presa", "0"), ("bc-safe-seg", "0")]
    curve = _rows(tmp_path / "a" / f"{stem}_curve.csv")
    assert [(r["method"], r["step"]) for r in curve] == [
        ("presa", "2"), ("presa", "4"), ("bc-safe-seg", "2"), ("bc-safe-seg", "4")]
    final = next(r for r in rows if r["method"] == "presa")
    last = next(r for r in curve if (r["method"], r["step"]) == ("presa", "4"))
    # the last checkpoint is the same evaluation as the final row
    assert last["normalized_cost"] == final["normalized_cost"]
    assert (tmp_path / "runs" / "0" / "presa" / "policy.pt").is_file()

    # merge: no training, rows and curves from both processes, plots drawn
    out = _run(tmp_path, "merged", "--seeds", "0", "1", "--methods",
               "--import-details", str(tmp_path / "a" / f"{stem}_details.csv"),
               str(tmp_path / "b" / f"{stem}_details.csv"),
               str(tmp_path / "a" / f"{stem}_reference.csv"),
               "--import-curves", str(tmp_path / "a" / f"{stem}_curve.csv"),
               str(tmp_path / "b" / f"{stem}_curve.csv"))
    assert out == ""  # nothing trained or evaluated: π_ref's row came with the import
    merged = _rows(tmp_path / "merged" / f"{stem}.csv")
    assert sorted((r["method"], r["seed"]) for r in merged) == [
        ("bc-safe-seg", "0"), ("presa", "0"), ("presa", "1")]
    assert len(_rows(tmp_path / "merged" / f"{stem}_curve.csv")) == 6
    table = (tmp_path / "merged" / f"{stem}.md").read_text()
    assert "| presa | 2 |" in table and "| bc-safe-seg | 1 |" in table
    for method in ("presa", "bc-safe-seg"):
        png = tmp_path / "merged" / f"{stem}_curve_{method}.png"
        assert png.read_bytes()[:4] == b"\x89PNG"

    # resume: a finished (method, seed) is not trained again
    again = _run(tmp_path, "a", "--seeds", "0", "--methods", "presa", "--checkpoint-every", "2")
    assert "presa seed 0" not in again
    assert _rows(tmp_path / "a" / f"{stem}.csv") == rows
