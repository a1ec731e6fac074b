"""The executors of ``retrofit compare``: several local workers and a local Ray instance give the
same rows as the one-after-another run, and a resumed sweep skips the cells already written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrofit.compare import CompareConfig, run_compare
from retrofit.data.shipped import default_dataset_path

SCORES = ("method", "cost_threshold", "seed", "normalized_reward", "normalized_cost", "updates")


def config(out: Path, **kw: object) -> CompareConfig:
    return CompareConfig(
        task="BallRun", methods=("bc-all", "prefine"), out=out,
        dataset=str(default_dataset_path("OfflineBallRun-v0")), cost_thresholds=(20.0,),
        seeds=(0,), steps=4, batch_size=8, eval_episodes=1, checkpoint_every=0, bc_steps=4,
        n_preferred=10, n_nonpreferred=5, device="cpu", **kw,
    )


def scores(rows: list[dict]) -> list[tuple]:
    return sorted(tuple(r[k] for k in SCORES) for r in rows)


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    return run_compare(config(tmp_path_factory.mktemp("serial") / "out", isolate=False),
                       log=lambda _: None)


def test_local_workers_equal_serial(serial: list[dict], tmp_path: Path) -> None:
    rows = run_compare(config(tmp_path / "out", workers=2), log=lambda _: None)
    assert scores(rows) == scores(serial)
    assert all(json.loads(p.read_text())["isolated"]
               for p in (tmp_path / "out" / "cells").glob("*.json"))


def test_ray_equals_serial_and_resume_skips_done_cells(serial: list[dict], tmp_path: Path) -> None:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        lines: list[str] = []
        rows = run_compare(config(tmp_path / "out", executor="ray"), log=lines.append)
        assert scores(rows) == scores(serial)
        assert sum(line.startswith("run ") for line in lines) == 2
        again: list[str] = []
        rerun = run_compare(config(tmp_path / "out", executor="ray"), log=again.append)
        assert scores(rerun) == scores(serial)
        assert sum(line.startswith("skip ") for line in again) == 2
        assert not any(line.startswith("run ") for line in again)
    finally:
        ray.shutdown()


def _dies_once(spec: dict) -> dict:
    """A cell whose first attempt kills its Ray worker process (as a lost node would)."""
    import os

    marker = Path(spec["marker"])
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os._exit(1)
    return {"row": {"train_wall_clock_s": 0.0}, "seed": spec["seed"],
            "first_pid": int(marker.read_text()), "pid": os.getpid()}


def _write_record(out: Path, record: dict) -> dict:
    (out / f"seed{record['seed']}.json").write_text(json.dumps(record))
    return record


def _reference_file(out: Path, seed: int) -> Path:
    return out / "reference" / f"seed{seed}.pt"


def test_ray_retries_a_cell_whose_worker_died(tmp_path: Path) -> None:
    import types

    import ray
    from ray import cloudpickle

    from retrofit.compare.executors import CellFunctions, run_cells

    out = tmp_path / "out"
    _reference_file(out, 0).parent.mkdir(parents=True)
    _reference_file(out, 0).write_bytes(b"reference")
    data = tmp_path / "data.hdf5"
    data.write_bytes(b"data")
    cell = CellFunctions(train=_dies_once, write=_write_record, run_here=_dies_once,
                         reference_file=_reference_file)
    spec = {"method": "prefine", "cost_threshold": 20.0, "seed": 0,
            "dataset_path": str(data), "marker": str(tmp_path / "died")}
    settings = types.SimpleNamespace(executor="ray", ray_address=None, threads=1,
                                     device="cpu", out=str(out), workers=1)
    cloudpickle.register_pickle_by_value(__import__(__name__))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        lines: list[str] = []
        run_cells([spec], settings, lines.append, cell)
    finally:
        ray.shutdown()
        cloudpickle.unregister_pickle_by_value(__import__(__name__))
    record = json.loads((out / "seed0.json").read_text())
    assert (tmp_path / "died").exists()
    assert record["pid"] != record["first_pid"]  # the retry ran in a new worker
    assert any(line.startswith("done ") for line in lines)


def test_a_cell_killed_mid_fit_resumes_from_its_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import retrofit.evaluation as evaluation

    def cfg(out: Path) -> CompareConfig:
        return CompareConfig(
            task="BallRun", methods=("prefine",), out=out,
            dataset=str(default_dataset_path("OfflineBallRun-v0")), cost_thresholds=(20.0,),
            seeds=(0,), steps=30, batch_size=8, eval_episodes=1, checkpoint_every=10,
            checkpoint_episodes=1, bc_steps=4, n_preferred=10, n_nonpreferred=5, device="cpu",
            isolate=False,
        )

    clean = run_compare(cfg(tmp_path / "clean"), log=lambda _: None)
    real = evaluation.evaluate
    calls = {"n": 0}

    def dies_at_the_second_checkpoint(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 3:  # π_ref's evaluation, the step-10 checkpoint, then step 20: "kill"
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation, "evaluate", dies_at_the_second_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        run_compare(cfg(tmp_path / "killed"), log=lambda _: None)
    partial = tmp_path / "killed" / "partial" / "prefine__k20__s0"
    assert (partial / "checkpoint.pt").is_file()
    monkeypatch.setattr(evaluation, "evaluate", real)
    resumed = run_compare(cfg(tmp_path / "killed"), log=lambda _: None)
    assert scores(resumed) == scores(clean)
    record = json.loads((tmp_path / "killed" / "cells" / "prefine__k20__s0.json").read_text())
    assert [c["step"] for c in record["checkpoints"]] == [10, 20, 30]
    assert not partial.exists()


def test_run_spawned_runs_in_a_child_and_names_a_failure():
    """The one spawn helper behind isolated cells and batches: a good target returns, a failing
    one raises naming what failed (a real spawned process each)."""
    import json

    import pytest

    from retrofit.compare.cells import run_spawned

    run_spawned(json.dumps, {"cell": 1}, "cell x")
    with pytest.raises(RuntimeError, match=r"batch y failed \(exit code 1\)"):
        run_spawned(int, {"cell": 1}, "batch y")  # int(dict) raises TypeError in the child
