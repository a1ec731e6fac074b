"""The compare harness for real: two methods, tiny steps, the BallRun simulator, resumability."""

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from retrofit.compare import RESULT_COLUMNS, CompareConfig, run_compare
from retrofit.compare.cells import metrics_path
from retrofit.compare.harness import DATA_BUILDERS, cell_path, data_kind, write_csv
from retrofit.errors import ConfigError


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    from retrofit.data.dataset import TrajectoryDataset
    from retrofit.data.shipped import default_dataset_path

    path = default_dataset_path()
    full = TrajectoryDataset.from_hdf5(path)  # its own task (BallRun or BallCircle)
    _, costs = full.episode_returns()
    safe, unsafe = np.flatnonzero(costs < 20)[:30], np.flatnonzero(costs >= 20)[-10:]
    out = tmp_path_factory.mktemp("data") / "small.hdf5"
    full.select_episodes(np.concatenate([safe, unsafe]).tolist()).to_hdf5(out)
    return str(out), str(full.task)


def test_families_cover_every_registered_baseline():
    for method in ("prefine", "dpo", "ppl", "safedice", "cpq", "bc-all", "bc-safe"):
        assert data_kind(method) in DATA_BUILDERS


def test_compare_two_methods_then_resume(small_dataset, tmp_path):
    path, task = small_dataset
    config = CompareConfig(
        task=task, methods=("prefine", "bc-safe"), out=tmp_path, dataset=path,
        cost_thresholds=(20.0,), steps=4, eval_episodes=2, checkpoint_every=2,
        checkpoint_episodes=1, bc_steps=10, n_preferred=10, n_nonpreferred=4, device="cpu",
        isolate=False, overrides={"prefine": {"batch_size": 8}, "bc-safe": {"batch_size": 8}},
    )
    rows = run_compare(config, log=lambda _: None)
    with open(tmp_path / "results.csv") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == RESULT_COLUMNS
        written = list(reader)
    assert [r["method"] for r in written] == ["prefine", "bc-safe"]
    for row in rows:
        assert row["updates"] == 4 and row["train_wall_clock_s"] > 0
        assert row["updates_per_s"] == pytest.approx(4 / row["train_wall_clock_s"])
        assert row["peak_rss_mb"] > 0 and row["device"] == "cpu"
    record = json.loads(cell_path(tmp_path, "prefine", 20.0, 0).read_text())
    assert [c["step"] for c in record["checkpoints"]] == [2, 4]
    # the finished cell keeps its per-step training metrics; its partial folder is gone
    with open(metrics_path(tmp_path, "prefine", 20.0, 0)) as fh:
        logged = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in logged][-1] == 4 and "loss" in logged[0]
    assert not (tmp_path / "partial" / "prefine__k20__s0").exists()
    for name in ("results.md", "reward_cost.png", "safe_fraction.png", "run.json"):
        assert (tmp_path / name).stat().st_size > 0

    # resume: finished cells are not rerun; a new method only adds its own cell
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "cells").iterdir()}
    logs = []
    config2 = CompareConfig(**{**config.__dict__, "methods": ("prefine", "bc-safe", "bc-all")})
    run_compare(config2, log=logs.append)
    assert sum(line.startswith("skip") for line in logs) == 2
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    assert cell_path(tmp_path, "bc-all", 20.0, 0).is_file()


def test_csv_leaves_time_to_safe_empty_when_never_safe(tmp_path):
    row = {k: 1 for k in RESULT_COLUMNS} | {"time_to_safe_s": None}
    write_csv(tmp_path / "r.csv", [row])
    line = (tmp_path / "r.csv").read_text().splitlines()[1].split(",")
    assert line[RESULT_COLUMNS.index("time_to_safe_s")] == ""


def test_unknown_override_is_an_error(tmp_path):
    config = CompareConfig(task="BallRun", methods=("cpq",), out=tmp_path,
                           overrides={"cpq": {"nope": 1}})
    with pytest.raises(ConfigError, match="nope"):
        run_compare(config)


def test_cells_from_other_settings_are_not_reused(small_dataset, tmp_path):
    path, task = small_dataset
    config = CompareConfig(
        task=task, methods=("bc-all",), out=tmp_path, dataset=path,
        cost_thresholds=(20.0,), steps=2, eval_episodes=1, checkpoint_every=0, bc_steps=5,
        n_preferred=10, n_nonpreferred=4, device="cpu", isolate=False,
    )
    run_compare(config, log=lambda _: None)
    with pytest.raises(ConfigError, match="other settings"):
        run_compare(CompareConfig(**{**config.__dict__, "steps": 3}), log=lambda _: None)


def test_compare_runs_cdt_and_safe_rlhf_cdt_with_their_memory(small_dataset, tmp_path):
    """CDT (ground truth) and Safe-RLHF (CDT) (feedback) through the harness: trained, evaluated
    with their context windows at checkpoints and at the end, one row each."""
    path, task = small_dataset
    tiny = {"embedding_dim": 16, "heads": 2, "layers": 1, "batch_size": 8}
    config = CompareConfig(
        task=task, methods=("cdt", "safe-rlhf-cdt"), out=tmp_path, dataset=path,
        cost_thresholds=(20.0,), steps=2, eval_episodes=1, checkpoint_every=2,
        checkpoint_episodes=1, bc_steps=2, n_preferred=10, n_nonpreferred=4, device="cpu",
        isolate=False, overrides={"cdt": tiny, "safe-rlhf-cdt": {
            **tiny, "reward_model_steps": 2, "cost_model_steps": 2, "model_batch_size": 4,
            "hidden_sizes": (8,)}},
    )
    rows = run_compare(config, log=lambda _: None)
    assert [r["method"] for r in rows] == ["cdt", "safe-rlhf-cdt"]
    assert [r["updates"] for r in rows] == [2, 6]
    for row in rows:
        assert np.isfinite(row["normalized_reward"]) and np.isfinite(row["normalized_cost"])
    record = json.loads(cell_path(tmp_path, "safe-rlhf-cdt", 20.0, 0).read_text())
    assert record["hyperparameters"]["target_cost"] == 0.0
    assert [c["step"] for c in record["checkpoints"]] == [6]


def tiny_prefine_config(task: str, path: str, out: Path) -> CompareConfig:
    """Two PREFINE steps at κ 20, seed 0, on ``path``, a 5-step π_ref: seconds per cell."""
    return CompareConfig(
        task=task, methods=("prefine",), out=out, dataset=path, cost_thresholds=(20.0,), steps=2,
        eval_episodes=1, checkpoint_every=0, bc_steps=5, n_preferred=10, n_nonpreferred=4,
        device="cpu", isolate=False, overrides={"prefine": {"batch_size": 8}},
    )


def test_reference_std_gives_a_clipped_gaussian_reference_and_is_a_setting(small_dataset,
                                                                           tmp_path):
    """0.2 (the default since issue 25) is the clipped Gaussian, None stays the tanh-Gaussian;
    a folder of either is resumed only by a run asking for the same."""
    from retrofit.compare.harness import reference_path
    from retrofit.policies.clipped_gaussian import ClippedGaussianPolicy
    from retrofit.policies.gaussian import TanhGaussianPolicy
    from retrofit.policies.io import load_policy

    path, task = small_dataset
    config = tiny_prefine_config(task, path, tmp_path / "clipped")
    assert config.reference_std == 0.2
    run_compare(config, log=lambda _: None)
    reference = load_policy(reference_path(config.out, 0))
    assert isinstance(reference, ClippedGaussianPolicy) and reference.fixed_std == 0.2
    # the CPU that made them is recorded: digits reproduce on the same CPU model only
    from retrofit.device import cpu_model

    assert json.loads((config.out / "reference" / "seed0.json").read_text())["cpu"] \
        == json.loads(cell_path(config.out, "prefine", 20.0, 0).read_text())["cpu"] \
        == cpu_model() != ""
    with pytest.raises(ConfigError, match="reference_std"):
        run_compare(CompareConfig(**{**config.__dict__, "reference_policy": "tanh-gaussian"}),
                    log=lambda _: None)
    # the spelling before the family names (reference_std None) still makes the tanh-Gaussian,
    # and says what to write instead
    with pytest.warns(FutureWarning, match="reference_policy='tanh-gaussian'"):
        legacy = CompareConfig(**{**config.__dict__, "reference_std": None,
                                  "out": tmp_path / "tanh"})
    assert legacy.reference_class == "tanh-gaussian"
    assert legacy.named_reference().reference_policy == "tanh-gaussian"
    with warnings.catch_warnings():  # warned once, at construction; the harness runs the name
        warnings.simplefilter("error", FutureWarning)
        run_compare(legacy, log=lambda _: None)
    assert isinstance(load_policy(reference_path(legacy.out, 0)), TanhGaussianPolicy)
    tanh = CompareConfig(**{**config.__dict__, "reference_policy": "tanh-gaussian",
                            "out": tmp_path / "tanh"})
    # a folder the pre-issue-25 default made: the new default is refused with the way back
    with pytest.raises(ConfigError, match=r"resume it with --reference-policy tanh-gaussian"):
        run_compare(CompareConfig(**{**tanh.__dict__, "reference_policy": "clipped-gaussian"}),
                    log=lambda _: None)
    logs: list[str] = []
    run_compare(tanh, log=logs.append)  # the new spelling resumes the old spelling's folder
    assert logs == ["skip  prefine κ=20 seed=0 (done: prefine__k20__s0.json)"]
    with pytest.warns(FutureWarning, match="'gaussian' is deprecated: say 'tanh-gaussian'"):
        old_name = CompareConfig(**{**legacy.__dict__, "reference_policy": "gaussian"})
    logs.clear()
    run_compare(old_name, log=logs.append)
    assert logs == ["skip  prefine κ=20 seed=0 (done: prefine__k20__s0.json)"]
    with pytest.raises(ConfigError, match="shapes the clipped Gaussian π_ref only"):
        CompareConfig(**{**tanh.__dict__, "reference_std": 0.5})
    for bad in (0.0, -1.0, float("nan"), "0.2", True):
        with pytest.raises(ConfigError, match="reference_std"):
            CompareConfig(**{**config.__dict__, "reference_std": bad})


def test_vae_reference_is_the_papers_class_and_a_setting(small_dataset, tmp_path):
    """reference_policy="vae" trains BCQ's VAE at PREFINE A.4's [256, 256] width, fine-tunes it
    with PREFINE, and a folder of one family is never resumed by a run asking for the other."""
    from retrofit.compare.harness import reference_path
    from retrofit.policies.io import load_policy
    from retrofit.policies.vae import VAEPolicy

    path, task = small_dataset
    gaussian = tiny_prefine_config(task, path, tmp_path / "gaussian")
    vae = CompareConfig(**{**gaussian.__dict__, "reference_policy": "vae", "out": tmp_path / "v"})
    rows = run_compare(vae, log=lambda _: None)
    reference = load_policy(reference_path(vae.out, 0))
    assert isinstance(reference, VAEPolicy) and reference.hidden_sizes == (256, 256)
    assert json.loads((vae.out / "reference" / "seed0.json").read_text())[
        "reference_policy"] == "vae"
    assert np.isfinite(rows[0]["normalized_reward"]) and rows[0]["updates"] == 2
    run_compare(gaussian, log=lambda _: None)
    for config, other in ((gaussian, vae), (vae, gaussian)):
        with pytest.raises(ConfigError, match="reference_policy"):
            run_compare(CompareConfig(**{**config.__dict__, "out": other.out}),
                        log=lambda _: None)
    # the π_ref record alone also refuses the other family (a folder without compare.json)
    (vae.out / "compare.json").unlink()
    with pytest.raises(ConfigError, match="trained as .*'reference_policy': 'vae'"):
        run_compare(CompareConfig(**{**gaussian.__dict__, "out": vae.out}), log=lambda _: None)
    with pytest.raises(ConfigError, match="reference_policy='mixture'"):
        CompareConfig(**{**gaussian.__dict__, "reference_policy": "mixture"})
    with pytest.raises(ConfigError, match="shapes the clipped Gaussian"):
        CompareConfig(**{**vae.__dict__, "reference_std": 0.5})
    # the VAE's β_KL (amendment 11) is a setting of the folder and of its π_ref, VAE only
    assert reference.kl_weight == 0.5
    light = CompareConfig(**{**vae.__dict__, "reference_kl_weight": 0.05})
    with pytest.raises(ConfigError, match="reference_kl_weight"):
        run_compare(light, log=lambda _: None)
    run_compare(CompareConfig(**{**light.__dict__, "out": tmp_path / "light"}),
                log=lambda _: None)
    assert load_policy(reference_path(tmp_path / "light", 0)).kl_weight == 0.05
    for bad in ({"reference_kl_weight": -1.0}, {"reference_kl_weight": float("nan")}):
        with pytest.raises(ConfigError, match="reference_kl_weight"):
            CompareConfig(**{**vae.__dict__, **bad})
    with pytest.raises(ConfigError, match="reference_kl_weight"):
        CompareConfig(**{**gaussian.__dict__, "reference_kl_weight": 0.05})


RECORDED = sorted((Path(__file__).resolve().parents[1] / "docs" / "results").rglob("compare.json"))
"""The comparison folders kept in docs/results (the suite's tables)."""


def test_docs_keep_recorded_comparison_folders():
    assert RECORDED, "the test below would check nothing"


@pytest.mark.parametrize("manifest", RECORDED, ids=lambda p: p.parent.name)
def test_every_recorded_comparison_folder_resumes_with_its_own_settings(manifest):
    """A folder's settings, rebuilt from the config in its run.json, are still the ones its
    compare.json holds, so it resumes (rather than being refused or changed) under this code."""
    from retrofit.compare.cells import config_from_spec
    from retrofit.compare.harness import run_settings

    recorded = json.loads(manifest.read_text())["settings"]
    spec = json.loads((manifest.parent / "run.json").read_text())["config"]
    settings = run_settings(config_from_spec(spec), recorded["dataset_sha256"])
    assert json.loads(json.dumps(settings)) == recorded


def test_top_fraction_narrows_d_p_and_is_a_setting(small_dataset, tmp_path):
    """The default D_p is the N_p best SAFE episodes; top_fraction 0.5 (the earlier default)
    draws from the better half and is the one value not recorded, so a folder made before the
    default changed is refused by a default run, with the option that resumes it named."""
    from retrofit.compare.cells import config_to_spec, prepare_cell
    from retrofit.compare.manifest import cell_settings
    from retrofit.data.dataset import TrajectoryDataset

    path, task = small_dataset
    narrow = CompareConfig(task=task, methods=("sft-only",), out=tmp_path / "a", dataset=path,
                           cost_thresholds=(20.0,), steps=2, eval_episodes=1,
                           checkpoint_every=0, bc_steps=5, n_preferred=10, n_nonpreferred=4,
                           device="cpu", isolate=False)
    assert narrow.top_fraction == 0.0
    assert cell_settings(narrow, "sft-only", "x")["top_fraction"] == 0.0
    half = CompareConfig(**{**narrow.__dict__, "top_fraction": 0.5})
    assert "top_fraction" not in cell_settings(half, "sft-only", "x")
    rewards, costs = TrajectoryDataset.from_hdf5(path).episode_returns()
    best = sorted(rewards[costs < 20.0], reverse=True)[:10]
    run_compare(half, log=lambda _: None)
    for config, expect_best in ((narrow, True), (half, False)):
        spec = {**config_to_spec(config), "dataset_path": str(path), "method": "sft-only",
                "cost_threshold": 20.0, "seed": 0, "reference": {"normalized_reward": 0.0}}
        preferred = prepare_cell(spec).data[0]
        got = sorted(preferred.episode_returns()[0], reverse=True)
        assert (got == pytest.approx(best)) is expect_best
    with pytest.raises(ConfigError, match="top_fraction.*resume it with --top-fraction 0.5"):
        run_compare(narrow, log=lambda _: None)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ConfigError, match="top_fraction"):
            CompareConfig(**{**narrow.__dict__, "top_fraction": bad})
