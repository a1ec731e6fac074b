"""scripts/retrofit_vs_scratch.py --collect adds the run folders' cells to cells.csv and never
drops or silently replaces a committed row (the run folders are not in the repository)."""

import csv
import importlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
driver = importlib.import_module("retrofit_vs_scratch")


def row(variant: str, seed: int, reward: float, wall: float = 1.0) -> dict:
    return {"method": variant, "variant": variant, "task": "OfflineBallCircle-v0",
            "cost_threshold": 20.0, "seed": seed, "split": "selection",
            "normalized_reward": reward, "normalized_cost": 0.5, "episodes": 20,
            "updates": 2000, "train_wall_clock_s": wall, "base_method": "bc", "overrides": "{}",
            "threads": 1}


def write(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=driver.CELL_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def test_merge_keeps_old_rows_and_adds_new_ones_in_order():
    kept = [{k: str(v) for k, v in row("b", 0, 0.25).items()}]
    merged = driver.merge_cells(kept, [row("a", 1, 0.5), row("b", 1, 0.75)])
    assert [(r["variant"], int(r["seed"])) for r in merged] == [("a", 1), ("b", 0), ("b", 1)]
    assert merged[1] == kept[0]  # the CSV's row, untouched


def test_same_scores_keep_the_csv_row_and_different_scores_are_refused():
    kept = [{k: str(v) for k, v in row("a", 0, 0.1 + 0.2, wall=5.0).items()}]
    again = driver.merge_cells(kept, [row("a", 0, 0.1 + 0.2, wall=9.0)])
    assert again == kept
    with pytest.raises(SystemExit, match="normalized_reward 0.30000000000000004.*0.3"):
        driver.merge_cells(kept, [row("a", 0, 0.3)])


def test_collect_from_empty_run_folders_keeps_the_csv_byte_for_byte(tmp_path):
    csv_path = tmp_path / "cells.csv"
    write(csv_path, [row("a", 0, 0.123456789012345), row("b", 3, -0.5)])
    before = csv_path.read_bytes()
    (tmp_path / "runs").mkdir()
    assert driver.collect(tmp_path / "runs", csv_path) == 2
    assert csv_path.read_bytes() == before


def _cell_folder(runs: Path, cpu: str) -> None:
    """A run folder as the driver leaves it: one finished cell of ``variant-a`` and π_ref."""
    import json

    cells = runs / "BallCircle" / "variant-a" / "cells"
    cells.mkdir(parents=True)
    (cells / "prefine__k20__s0.json").write_text(json.dumps({
        "row": {"method": "prefine", "task": "OfflineBallCircle-v0", "cost_threshold": 20.0,
                "seed": 0, "normalized_reward": 0.5, "normalized_cost": 0.25, "updates": 10,
                "train_wall_clock_s": 1.0},
        "settings": {"eval_episodes": 20}, "cpu": cpu}))
    reference = runs / "BallCircle" / "reference"
    reference.mkdir()
    (reference / "seed0.json").write_text(json.dumps({
        "seed": 0, "reward": 600.0, "cost": 40.0, "eval_episodes": 20, "bc_steps": 5,
        "bc_wall_clock_s": 1.0, "reference_std": 0.2, "cpu": cpu}))


def test_collect_only_named_variants_records_each_cells_cpu(tmp_path):
    """A π_ref remade on another CPU differs in its digits and is refused; ``only`` collects the
    cells trained from it without it, each row saying which CPU made it."""
    csv_path = tmp_path / "cells.csv"
    committed = {**row("reference", 0, 0.7), "task": "OfflineBallCircle-v0"}
    write(csv_path, [committed])
    _cell_folder(tmp_path / "runs", cpu="Some CPU")
    with pytest.raises(SystemExit, match="variant': 'reference'"):
        driver.collect(tmp_path / "runs", csv_path)
    assert driver.collect(tmp_path / "runs", csv_path, only=("variant-a",)) == 2
    with csv_path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["variant"], r["cpu"]) for r in rows] == [("reference", ""),
                                                        ("variant-a", "Some CPU")]
    assert rows[0]["normalized_reward"] == "0.7"  # the committed π_ref row is untouched
