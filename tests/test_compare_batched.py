"""`retrofit compare --batched`: PREFINE cells of one κ across seeds as one batched run, written
as the same cell files and rows as separate cells; other methods train separately."""

import json

import numpy as np
import pytest

from retrofit.compare import RESULT_COLUMNS, CompareConfig, run_compare
from retrofit.compare.batched import batch_refusal
from retrofit.compare.harness import cell_path


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    from retrofit.data.dataset import TrajectoryDataset
    from retrofit.data.shipped import default_dataset_path

    full = TrajectoryDataset.from_hdf5(default_dataset_path())
    _, costs = full.episode_returns()
    safe, unsafe = np.flatnonzero(costs < 20)[:30], np.flatnonzero(costs >= 20)[-10:]
    out = tmp_path_factory.mktemp("data") / "small.hdf5"
    full.select_episodes(np.concatenate([safe, unsafe]).tolist()).to_hdf5(out)
    return str(out), str(full.task)


def _config(small_dataset, out, **changes) -> CompareConfig:
    path, task = small_dataset
    return CompareConfig(**{**dict(
        task=task, methods=("prefine", "bc-safe"), out=out, dataset=path, seeds=(0, 1),
        cost_thresholds=(20.0,), steps=4, eval_episodes=1, checkpoint_every=2,
        checkpoint_episodes=1, bc_steps=5, n_preferred=10, n_nonpreferred=4, device="cpu",
        isolate=False, overrides={"prefine": {"batch_size": 8}, "bc-safe": {"batch_size": 8}},
    ), **changes})


def test_batched_cells_are_the_cells_of_separate_runs(small_dataset, tmp_path):
    logs: list[str] = []
    rows = run_compare(_config(small_dataset, tmp_path / "batched", batched=True),
                       log=logs.append)
    assert "run   prefine κ=20 seeds=0,1 (batched)" in logs
    assert any(line.startswith("batched: bc-safe κ=20 trains its 2 cell(s) separately")
               for line in logs)
    assert sorted((r["method"], r["seed"]) for r in rows) == [
        ("bc-safe", 0), ("bc-safe", 1), ("prefine", 0), ("prefine", 1)]
    assert all(list(r) == list(RESULT_COLUMNS) and r["updates"] == 4 for r in rows)
    assert not (tmp_path / "batched" / "partial").exists() or not any(
        (tmp_path / "batched" / "partial").iterdir())

    separate = _config(small_dataset, tmp_path / "separate", methods=("prefine",))
    run_compare(separate, log=lambda _: None)
    # unbatched runs write what they wrote before the option existed
    assert "batched" not in json.loads((tmp_path / "separate" / "run.json").read_text())["config"]
    for seed in (0, 1):
        batched = json.loads(cell_path(tmp_path / "batched", "prefine", 20.0, seed).read_text())
        alone = json.loads(cell_path(tmp_path / "separate", "prefine", 20.0, seed).read_text())
        assert batched["batched"] == {"seeds": [0, 1]} and "batched" not in alone
        for key in ("hyperparameters", "settings", "reward_target", "data_kind"):
            assert batched[key] == alone[key], key
        assert [c["step"] for c in batched["checkpoints"]] == [2, 4]
        assert set(batched) - {"batched"} == set(alone)

    # the folder resumes as any other: nothing left to train
    logs.clear()
    run_compare(_config(small_dataset, tmp_path / "batched", batched=True), log=logs.append)
    assert sum(line.startswith("skip") for line in logs) == 4
    assert not any(line.startswith("run") for line in logs)


def test_what_cannot_be_batched_is_named(small_dataset, tmp_path):
    config = _config(small_dataset, tmp_path, batched=True)
    assert batch_refusal("prefine", config, 20.0, 2) is None
    assert batch_refusal("dpo", config, 20.0, 2) is None
    assert "PREFINE-family only" in batch_refusal("bc-safe", config, 20.0, 2)
    trajectories = _config(small_dataset, tmp_path, batched=True,
                           overrides={"prefine": {"sampling": "trajectories"}})
    assert "sampling='trajectories'" in batch_refusal("prefine", trajectories, 20.0, 2)
    no_table = _config(small_dataset, tmp_path, batched=True,
                       overrides={"prefine": {"precompute_reference": False}})
    assert "precompute_reference=False" in batch_refusal("prefine", no_table, 20.0, 2)


def test_a_killed_batch_resumes_to_the_same_cells(small_dataset, tmp_path, monkeypatch):
    import retrofit.evaluation

    whole = run_compare(_config(small_dataset, tmp_path / "whole", methods=("prefine",),
                                batched=True), log=lambda _: None)
    evaluate = retrofit.evaluation.evaluate
    calls = {"checkpoints": 0}

    def dies_at_step_4(*args, **kwargs):
        if kwargs.get("seed", 0) >= 10_000:  # a checkpoint evaluation (seed 10 000 + seed)
            calls["checkpoints"] += 1
            if calls["checkpoints"] == 3:  # step 4's first: after step 2's checkpoint was saved
                raise KeyboardInterrupt
        return evaluate(*args, **kwargs)

    config = _config(small_dataset, tmp_path / "killed", methods=("prefine",), batched=True)
    monkeypatch.setattr(retrofit.evaluation, "evaluate", dies_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        run_compare(config, log=lambda _: None)
    monkeypatch.setattr(retrofit.evaluation, "evaluate", evaluate)
    batch = tmp_path / "killed" / "partial" / "prefine__k20__batch-s0-1"
    assert (batch / "checkpoint.pt").is_file()
    resumed = run_compare(config, log=lambda _: None)
    key = ("normalized_reward", "normalized_cost", "updates")
    assert [[r[k] for k in key] for r in resumed] == [[r[k] for k in key] for r in whole]
    for seed in (0, 1):
        a, b = (json.loads(cell_path(tmp_path / f, "prefine", 20.0, seed).read_text())
                for f in ("whole", "killed"))
        assert [(c["step"], c["normalized_reward"]) for c in a["checkpoints"]] == \
            [(c["step"], c["normalized_reward"]) for c in b["checkpoints"]]
