"""docs/protocol.md's rule 1 as scripts/retrofit_vs_scratch_summary.py applies it: the best
safe-everywhere candidate wins; ties within 0.01 go to the larger λ, and a candidate with another
reference family (amendment 10's VAE) loses every tie."""

import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
summary = importlib.import_module("retrofit_vs_scratch_summary")


def cells(method: str, rewards: list[float], cost: float = 0.5) -> list[dict]:
    return [{"method": method, "task": "T", "cost_threshold": 20.0, "seed": seed,
             "split": "selection", "normalized_reward": r, "normalized_cost": cost}
            for seed, r in enumerate(rewards)]


def pick(*rows: list[dict]) -> str | None:
    names = tuple(dict.fromkeys(r[0]["method"] for r in rows))
    ranks = {n: summary.candidate_tie_rank(n) for n in names}
    return summary.choose([c for r in rows for c in r], names, ranks)[0]


DEFAULT, VAE, VAE_PAPER = ("prefine-l0.3-lr3e-5-top100-20k", "prefine-vae-top100-20k",
                           "prefine-vae-paper-top100-20k")


def test_vae_candidates_lose_ties_even_with_larger_lambda():
    assert summary.candidate_tie_rank(VAE_PAPER) < summary.candidate_tie_rank("dpo-20k") == 0.0
    assert pick(cells(DEFAULT, [0.60] * 3), cells(VAE_PAPER, [0.609] * 3)) == DEFAULT
    assert pick(cells(VAE, [0.609] * 3), cells(DEFAULT, [0.60] * 3)) == DEFAULT


def test_vae_candidate_wins_by_more_than_the_tie_and_only_if_safe():
    assert pick(cells(DEFAULT, [0.60] * 3), cells(VAE, [0.62] * 3)) == VAE
    assert pick(cells(DEFAULT, [0.60] * 3), cells(VAE, [0.70] * 3, cost=1.2)) == DEFAULT


def test_incomplete_candidates_are_not_compared():
    assert pick(cells(DEFAULT, [0.60] * 3), cells(VAE, [0.90] * 2)) == DEFAULT


def test_a_collected_tasks_data_rows_survive_a_machine_without_its_file(tmp_path):
    import json

    row = {"task": "OfflineDroneRun-v0", "cost_threshold": 10.0, "n_safe": 224, "best": 0.471}
    (tmp_path / "summary.json").write_text(json.dumps({"data_ceiling": [row]}))
    assert summary.recorded_ceiling(tmp_path, "OfflineDroneRun-v0") == [row]
    assert summary.recorded_ceiling(tmp_path, "OfflineCarRun-v0") == []
    assert summary.recorded_ceiling(tmp_path / "absent", "OfflineDroneRun-v0") == []


def test_each_report_row_stands_beside_its_own_papers_number():
    assert summary.paper_cell("OfflineBallRun-v0", "prefine (default)") == "0.41 / 0.41"
    assert summary.paper_cell("OfflineBallRun-v0", "presa") == "0.19 / 0.09"
    assert summary.paper_cell("OfflineCarRun-v0", "presa") == ""
    assert summary.paper_cell("OfflineBallRun-v0", "bc-safe") == ""
