"""PREFINE trainer: forward-pass budget, frozen reference, determinism, direction of learning."""

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from retrofit import Retrofitter
from retrofit.adapters import wrap
from retrofit.errors import ConfigError, DataError
from retrofit.methods.prefine import PrefineConfig, PrefineTrainer, VanillaDPOConfig
from retrofit.policies.gaussian import TanhGaussianPolicy
from retrofit.training.samplers import PairedBatcher


@dataclass
class Arrays:
    observations: np.ndarray
    actions: np.ndarray
    episode_starts: np.ndarray


def _data(rng, n_episodes: int, length: int, action_value: float) -> Arrays:
    n = n_episodes * length
    obs = rng.standard_normal((n, 4)).astype(np.float32)
    act = np.clip(action_value + 0.05 * rng.standard_normal((n, 2)), -0.99, 0.99).astype(np.float32)
    return Arrays(obs, act, np.arange(0, n + 1, length))


def _policy(seed: int = 0) -> TanhGaussianPolicy:
    torch.manual_seed(seed)
    return TanhGaussianPolicy(4, 2, -np.ones(2), np.ones(2), hidden_sizes=(32, 32))


@pytest.fixture
def datasets(rng):
    # preferred (safe) actions near +0.5, non-preferred (unsafe) near -0.5
    return _data(rng, 10, 20, 0.5), _data(rng, 4, 20, -0.5)


@pytest.mark.parametrize("precompute", [False, True])
def test_one_forward_per_network_per_step(datasets, precompute):
    trainer = PrefineTrainer(wrap(_policy()), PrefineConfig(
        beta=0.2, sft_weight=1.0, batch_size=16, precompute_reference=precompute), device="cpu")
    calls = {"policy": 0, "reference": 0}
    trainer.policy.module.register_forward_hook(lambda *_: calls.__setitem__(
        "policy", calls["policy"] + 1))
    trainer.reference.module.register_forward_hook(lambda *_: calls.__setitem__(
        "reference", calls["reference"] + 1))
    trainer.fit(*datasets, steps=7, progress=False)
    # precomputed: one chunked pass over the dataset's states before the first step, none after
    assert calls == {"policy": 7, "reference": 1 if precompute else 7}


def test_reference_stays_frozen_and_policy_moves(datasets):
    original = _policy()
    before = {k: v.clone() for k, v in original.state_dict().items()}
    trainer = PrefineTrainer(wrap(original), PrefineConfig(beta=0.2, sft_weight=1.0,
                                                           batch_size=16), device="cpu")
    trainer.fit(*datasets, steps=20, progress=False)
    for key, value in trainer.reference.module.state_dict().items():
        assert torch.equal(value, before[key])
    for key, value in original.state_dict().items():  # the user's object is untouched
        assert torch.equal(value, before[key])
    moved = [not torch.equal(v, before[k]) for k, v in trainer.policy.module.state_dict().items()]
    assert any(moved)


def test_learning_raises_preferred_and_lowers_nonpreferred_likelihood(datasets):
    pref, nonpref = datasets
    trainer = PrefineTrainer(wrap(_policy()), PrefineConfig(beta=0.5, sft_weight=1.0,
                                                            batch_size=64, learning_rate=1e-3),
                             device="cpu")
    obs_p, act_p = torch.as_tensor(pref.observations), torch.as_tensor(pref.actions)
    obs_n, act_n = torch.as_tensor(nonpref.observations), torch.as_tensor(nonpref.actions)
    with torch.no_grad():
        p0 = trainer.policy.log_prob(obs_p, act_p).mean().item()
        n0 = trainer.policy.log_prob(obs_n, act_n).mean().item()
    trainer.fit(pref, nonpref, steps=300, progress=False)
    with torch.no_grad():
        p1 = trainer.policy.log_prob(obs_p, act_p).mean().item()
        n1 = trainer.policy.log_prob(obs_n, act_n).mean().item()
    assert p1 > p0 + 1.0
    assert n1 < n0 - 1.0
    deterministic = trainer.policy.act(pref.observations[:50])
    assert np.abs(deterministic - 0.5).mean() < 0.15


def test_same_seed_same_result(datasets):
    def run():
        trainer = PrefineTrainer(wrap(_policy()), PrefineConfig(beta=0.2, sft_weight=1.0,
                                                                batch_size=16), device="cpu",
                                 seed=3)
        trainer.fit(*datasets, steps=15, progress=False)
        return trainer.policy.module.state_dict()

    a, b = run(), run()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_trajectory_sampling_takes_whole_episodes(datasets, rng):
    batcher = PairedBatcher(*datasets, batch_size=3, device=torch.device("cpu"),
                            sampling="trajectories")
    obs, act, n_pref = batcher.sample()
    assert n_pref == 3 * 20 and obs.shape == (6 * 20, 4) and act.shape == (120, 2)


def test_batcher_rejects_mismatched_and_empty_inputs(datasets, rng):
    pref, _ = datasets
    other = Arrays(np.zeros((5, 3), np.float32), np.zeros((5, 2), np.float32), np.array([0, 5]))
    with pytest.raises(DataError, match="disagree on shapes"):
        PairedBatcher(pref, other, 4, torch.device("cpu"))
    empty = Arrays(np.zeros((0, 4), np.float32), np.zeros((0, 2), np.float32), np.array([0]))
    with pytest.raises(DataError, match="empty"):
        PairedBatcher(pref, empty, 4, torch.device("cpu"))
    with pytest.raises(DataError, match="observations"):
        PairedBatcher(pref, object(), 4, torch.device("cpu"))


def test_configs_validate_and_resolve_presets():
    assert PrefineConfig().resolved("safety").beta == 0.05
    assert PrefineConfig().resolved("safety").sft_weight == 1.6
    assert PrefineConfig().resolved("bullet").beta == 0.2
    assert PrefineConfig(beta=0.6).resolved("safety").beta == 0.6
    assert VanillaDPOConfig().resolved("safety").sft_weight == 0.0
    with pytest.raises(ConfigError, match="beta"):
        PrefineConfig(beta=-1.0).resolved(None)


def test_retrofitter_returns_same_kind_and_writes_metrics(datasets, tmp_path):
    policy = _policy()
    out = Retrofitter(policy, seed=0, progress=False, log_dir=tmp_path, batch_size=8).fit(
        *datasets, steps=5
    )
    assert isinstance(out, TanhGaussianPolicy) and out is not policy
    rows = (tmp_path / "metrics.csv").read_text().strip().splitlines()
    assert rows[0].startswith("step,loss,") and len(rows) == 6
    assert (tmp_path / "config.json").exists()


def test_retrofitter_clear_errors(datasets):
    with pytest.raises(ConfigError, match="Available"):
        Retrofitter(_policy(), method="nope")
    with pytest.raises(ConfigError, match="Unknown hyper-parameter"):
        Retrofitter(_policy(), betta=0.1)
    with pytest.raises(DataError, match="nonpreferred"):
        Retrofitter(_policy(), progress=False).fit(datasets[0])


def test_precomputed_reference_gives_the_same_training() -> None:
    """The reference's per-state parameters computed once equal its per-step forward pass."""
    from retrofit.adapters import wrap
    from retrofit.data.dataset import TrajectoryDataset, action_bounds
    from retrofit.data.shipped import default_dataset_path
    from retrofit.methods.prefine import PrefineConfig, PrefineTrainer
    from retrofit.policies.gaussian import TanhGaussianPolicy

    data = TrajectoryDataset.from_hdf5(default_dataset_path()).select_episodes(list(range(60)))
    pref, nonpref = data.split_preferences(20, n_preferred=10, n_nonpreferred=5, seed=0)
    torch.manual_seed(0)
    policy = TanhGaussianPolicy(data.observations.shape[1], data.actions.shape[1],
                                *action_bounds(data), hidden_sizes=(32, 32))
    runs = []
    for precompute in (True, False):
        trainer = PrefineTrainer(wrap(policy), PrefineConfig(batch_size=16, beta=0.2,
                                                             sft_weight=1.0,
                                                             precompute_reference=precompute),
                                 device="cpu", seed=0)
        runs.append([p.detach() for p in trainer.fit(pref, nonpref, steps=20,
                                                      progress=False).parameters()])
        assert (trainer._ref_table is not None) == precompute
    for a, b in zip(*runs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_the_likelihood_warning_is_given_once_per_fit(rng):
    import warnings as _warnings

    from retrofit.errors import LikelihoodWarning

    def on_bounds(value: float) -> Arrays:
        data = _data(rng, 4, 10, value)
        data.actions[::2, 0] = 1.0
        return data

    preferred, nonpreferred = on_bounds(0.5), on_bounds(-0.5)
    settings = {"beta": 0.2, "sft_weight": 1.0, "batch_size": 8}
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")  # a repeat would show even from the same line
        Retrofitter(_policy(), device="cpu", progress=False, **settings).fit(
            preferred, nonpreferred, steps=2)
        PrefineTrainer(wrap(_policy()), PrefineConfig(**settings), device="cpu").fit(
            preferred, nonpreferred, steps=2, progress=False)
    likelihood = [w for w in caught if issubclass(w.category, LikelihoodWarning)]
    assert len(likelihood) == 2, [str(w.message)[:60] for w in likelihood]  # one per fit


def test_a_tanh_squashed_reference_with_actions_on_the_bounds_is_warned_about(rng):
    import warnings as _warnings

    from retrofit.errors import LikelihoodWarning
    from retrofit.policies.clipped_gaussian import ClippedGaussianPolicy

    def on_bounds(value: float) -> Arrays:
        data = _data(rng, 4, 10, value)
        data.actions[::2, 0] = 1.0  # half of one component on the upper bound: 25 %
        return data

    preferred, nonpreferred = on_bounds(0.5), on_bounds(-0.5)
    config = PrefineConfig(beta=0.2, sft_weight=1.0, batch_size=8)
    with pytest.warns(LikelihoodWarning, match="25% of the data's action components"):
        PrefineTrainer(wrap(_policy()), config, device="cpu").check_data(preferred, nonpreferred)
    clipped = ClippedGaussianPolicy(4, 2, -np.ones(2), np.ones(2), hidden_sizes=(8,),
                                    fixed_std=0.2)
    with _warnings.catch_warnings():
        _warnings.simplefilter("error")  # a density with mass on the bounds: no warning
        PrefineTrainer(wrap(clipped), config, device="cpu").check_data(preferred, nonpreferred)
    inside = _data(rng, 4, 10, 0.5), _data(rng, 4, 10, -0.5)  # actions clipped to ±0.99
    with _warnings.catch_warnings():
        _warnings.simplefilter("error")
        PrefineTrainer(wrap(_policy()), config, device="cpu").check_data(*inside)
