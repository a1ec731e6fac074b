"""Every registered method through the same checks (d3rlpy's ``algo_tester`` habit).

The list of methods comes from the registry, so a new method is tested the moment it registers:
it trains on real (shipped) data, counts its steps, returns finite parameters, is seeded, and a
fit stopped after a checkpoint and resumed ends bit for bit where an uninterrupted fit ends.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import torch

from retrofit import feedback
from retrofit.adapters import wrap
from retrofit.data.dataset import TrajectoryDataset, action_bounds
from retrofit.data.shipped import default_dataset_path
from retrofit.errors import ConfigError, TrainingError
from retrofit.methods.registry import available_methods, get_method
from retrofit.policies.gaussian import TanhGaussianPolicy
from retrofit.training.trainer import BaseTrainer


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    full = TrajectoryDataset.from_hdf5(default_dataset_path("OfflineBallRun-v0"))
    small = full.select_episodes(list(range(40)))
    preferred, nonpreferred = small.split_preferences(cost_threshold=20, n_preferred=10,
                                                      n_nonpreferred=5, seed=0)
    fb = feedback.synthesize(small, n_pairs=64, segment_length=8, cost_threshold=20, seed=0)
    torch.manual_seed(0)
    policy = TanhGaussianPolicy(small.observations.shape[1], small.actions.shape[1],
                                *action_bounds(small), hidden_sizes=(16, 16))
    policy.set_observation_normalizer(small.observations.mean(0), small.observations.std(0))
    return {"pairs": (preferred, nonpreferred), "transitions": (small,), "feedback": (fb,),
            "policy": policy}


EARLY_STAGES = ("discriminator_steps", "reward_model_steps", "cost_model_steps")
"""Config fields that set the length of a stage run before the main one (counted in
``steps_done``): SafeDICE's discriminator, Safe-RLHF (CDT)'s reward and cost models."""


def early_steps(method: str) -> int:
    """Steps a fit of ``small_config(method)`` takes before its main stage."""
    config = small_config(method)
    return sum(getattr(config, name, None) or 0 for name in EARLY_STAGES)


def small_config(method: str) -> Any:
    config_cls = get_method(method).config
    names = {f.name for f in fields(config_cls)}
    kw: dict[str, Any] = {"batch_size": 8}
    for name, value in (("cost_threshold", 20.0), *((stage, 3) for stage in EARLY_STAGES),
                        ("vae_hidden", 16), ("hidden_sizes", (16, 16)), ("segment_length", 4),
                        ("embedding_dim", 16), ("heads", 2), ("layers", 1),
                        ("model_batch_size", 8)):
        if name in names:
            kw[name] = value
    return config_cls(**kw)


def trainer(method: str, data: dict[str, Any], seed: int = 0) -> BaseTrainer:
    spec = get_method(method)
    return spec.trainer(wrap(data["policy"]), small_config(method), device="cpu", seed=seed)


def weights(adapter: Any) -> list[torch.Tensor]:
    return [p.detach().clone() for p in adapter.parameters()]


METHODS = available_methods()


def test_registry_lists_every_method_with_its_data_kind() -> None:
    assert {"prefine", "dpo", "ppl", "cpq", "safedice", "bc-all", "bc-safe", "presa"} <= set(
        METHODS)
    for name in METHODS:
        spec = get_method(name)
        assert issubclass(spec.trainer, BaseTrainer)
        assert spec.data_kind in ("pairs", "feedback", "transitions") and spec.summary


@pytest.mark.parametrize("method", METHODS)
def test_trains_counts_and_is_seeded(method: str, data: dict[str, Any]) -> None:
    kind = get_method(method).data_kind
    first = trainer(method, data)
    policy = first.fit(*data[kind], steps=4, progress=False)
    assert first.steps_done == 4 + early_steps(method)
    assert all(torch.isfinite(p).all() for p in policy.parameters())
    json.dumps(first.hyperparameters())  # JSON-able
    again = trainer(method, data).fit(*data[kind], steps=4, progress=False)
    for a, b in zip(weights(policy), weights(again), strict=True):
        assert torch.equal(a, b)


class Stop(Exception):
    pass


@pytest.mark.parametrize("method", METHODS)
def test_resume_after_a_checkpoint_equals_an_uninterrupted_fit(
    method: str, data: dict[str, Any], tmp_path: Path,
) -> None:
    kind = get_method(method).data_kind
    whole = trainer(method, data).fit(*data[kind], steps=7, progress=False)

    def crash(step: int, _: Any) -> None:
        if step >= 5 + early_steps(method):
            raise Stop  # the process dies after the step-4 checkpoint: steps 5.. are lost

    with pytest.raises(Stop):
        trainer(method, data).fit(*data[kind], steps=7, progress=False, callback=crash,
                                  callback_every=1, checkpoint_dir=tmp_path, checkpoint_every=2)
    resumed_trainer = trainer(method, data)
    resumed = resumed_trainer.fit(*data[kind], steps=7, progress=False, checkpoint_dir=tmp_path,
                                  checkpoint_every=2, resume=True)
    for a, b in zip(weights(whole), weights(resumed), strict=True):
        assert torch.equal(a, b), method
    assert resumed_trainer.steps_done == 7 + early_steps(method)


def test_non_finite_loss_stops_with_a_named_error(data: dict[str, Any]) -> None:
    small = data["transitions"][0]
    broken = TanhGaussianPolicy(small.observations.shape[1], small.actions.shape[1],
                                *action_bounds(small), hidden_sizes=(16, 16))
    with torch.no_grad():  # a module whose output is NaN
        next(broken.parameters()).fill_(float("nan"))
    spec = get_method("prefine")
    with pytest.raises(TrainingError, match=r"step 1 .*non-finite loss"):
        spec.trainer(wrap(broken), small_config("prefine"), device="cpu").fit(
            *data["pairs"], steps=3, progress=False)


@pytest.mark.parametrize("bad", [{"beta": float("nan")}, {"learning_rate": "abc"},
                                 {"batch_size": "32"}, {"batch_size": True},
                                 {"steps": -1}, {"sampling": "nope"}])
def test_configs_refuse_bad_values_at_construction(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=next(iter(bad))):
        get_method("prefine").config(**bad)


def test_seed_and_device_are_checked(data: dict[str, Any]) -> None:
    spec = get_method("prefine")
    with pytest.raises(ConfigError, match="seed"):
        spec.trainer(wrap(data["policy"]), small_config("prefine"), seed="a")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            spec.trainer(wrap(data["policy"]), small_config("prefine"), device="cuda")


def test_resume_needs_a_checkpoint(data: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="checkpoint"):
        trainer("prefine", data).fit(*data["pairs"], steps=2, progress=False,
                                     checkpoint_dir=tmp_path, resume=True)


def test_tensorboard_logger_writes_events(data: dict[str, Any], tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from retrofit import Retrofitter

    Retrofitter(data["policy"], "prefine", device="cpu", progress=False, log_dir=tmp_path,
                log="tensorboard", batch_size=8).fit(*data["pairs"], steps=3)
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert [e.step for e in events.Scalars("loss")] == [1, 2, 3]
