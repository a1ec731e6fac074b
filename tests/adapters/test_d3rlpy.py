from __future__ import annotations

import d3rlpy
import numpy as np
import pytest
import torch
from d3rlpy.logging import NoopAdapterFactory  # noqa: E402
from d3rlpy.models.torch import (  # noqa: E402
    build_gaussian_distribution,
    build_squashed_gaussian_distribution,
)

from retrofit import Retrofitter, feedback  # noqa: E402
from retrofit.adapters import wrap  # noqa: E402
from retrofit.adapters.d3rlpy import D3rlpyAdapter  # noqa: E402
from retrofit.errors import PolicyError  # noqa: E402

from . import ballrun_dataset, preference_sets, run_fresh  # noqa: E402


def _mdp() -> d3rlpy.dataset.MDPDataset:
    data = ballrun_dataset(4)
    return d3rlpy.dataset.MDPDataset(
        data.observations, data.actions, data.rewards, data.terminals,
        timeouts=data.timeouts,
    )


def _configs() -> dict:
    enc = d3rlpy.models.VectorEncoderFactory(hidden_units=[16])
    ac = {"actor_encoder_factory": enc, "critic_encoder_factory": enc, "batch_size": 32}

    def scalers() -> dict:  # fitted on the data at fit(): non-trivial obs scaling and Jacobian
        return {
            "observation_scaler": d3rlpy.preprocessing.StandardObservationScaler(),
            "action_scaler": d3rlpy.preprocessing.MinMaxActionScaler(),
        }

    return {
        "BC": d3rlpy.algos.BCConfig(encoder_factory=enc, **scalers()),
        "BC-stochastic": d3rlpy.algos.BCConfig(
            policy_type="stochastic", encoder_factory=enc, **scalers()
        ),
        "TD3PlusBC": d3rlpy.algos.TD3PlusBCConfig(**ac, **scalers()),
        "CQL": d3rlpy.algos.CQLConfig(**ac, n_action_samples=2, **scalers()),
        "IQL": d3rlpy.algos.IQLConfig(**ac, value_encoder_factory=enc),  # no scalers
        "SAC": d3rlpy.algos.SACConfig(**ac),
    }


KINDS = {
    "BC": "deterministic", "BC-stochastic": "gaussian", "TD3PlusBC": "deterministic",
    "CQL": "squashed", "IQL": "gaussian", "SAC": "squashed",
}


@pytest.fixture(scope="module")
def algos() -> dict:
    dataset = _mdp()
    out = {}
    for name, config in _configs().items():
        algo = config.create(device="cpu:0")
        algo.fit(
            dataset, n_steps=200, n_steps_per_epoch=200, show_progress=False,
            logger_adapter=NoopAdapterFactory(),
        )
        out[name] = algo
    return out


def _library_log_prob(algo, kind: str, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    """d3rlpy's own log-likelihood (scaled space) carried to env units by the scaler's Jacobian."""
    with torch.no_grad():
        if kind == "deterministic":  # fixed-σ Gaussian around predict(), σ = 1/√2
            return -((torch.as_tensor(algo.predict(obs.numpy())) - act) ** 2).sum(-1)
        x, y, jacobian = obs, act, 0.0
        if algo.observation_scaler is not None:
            x = algo.observation_scaler.transform(obs)
        if algo.action_scaler is not None:
            y = algo.action_scaler.transform(act)
            scaler = algo.action_scaler
            jacobian = float(np.log(2 / (scaler.maximum - scaler.minimum)).sum())
        build = build_squashed_gaussian_distribution if kind == "squashed" else (
            build_gaussian_distribution
        )
        return build(algo.impl.policy(x)).log_prob(y)[:, 0] + jacobian


def _batch(adapter: D3rlpyAdapter) -> tuple[torch.Tensor, torch.Tensor]:
    data = ballrun_dataset(4)
    rng = np.random.default_rng(1)
    low, high = adapter.action_low, adapter.action_high
    act = rng.uniform(low, high, size=(64, len(low))).astype(np.float32)
    act[:8] = data.actions[:8]
    return torch.as_tensor(data.observations[100:164]), torch.as_tensor(act)


@pytest.mark.parametrize("name", list(KINDS))
def test_log_prob_matches_d3rlpy(algos, name):
    algo = algos[name]
    adapter = wrap(algo)
    assert isinstance(adapter, D3rlpyAdapter) and adapter.kind == KINDS[name]
    if adapter.kind == "deterministic":
        adapter = D3rlpyAdapter(algo, sigma=2**-0.5)
    obs, act = _batch(adapter)
    with torch.no_grad():
        got = adapter.log_prob(obs, act)
        stacked = adapter.log_prob(obs, torch.stack([act, act.flip(0)]))
    torch.testing.assert_close(got, _library_log_prob(algo, adapter.kind, obs, act), atol=1e-5,
                               rtol=0)
    torch.testing.assert_close(stacked[0], got, atol=1e-6, rtol=0)
    np.testing.assert_allclose(adapter.act(obs.numpy()), algo.predict(obs.numpy()), atol=1e-6)
    trainable = adapter.trainable_copy()
    mean = trainable.mean_action(obs)  # PreSa's fixed-variance likelihood differentiates this
    assert mean.requires_grad
    np.testing.assert_allclose(mean.detach().numpy(), algo.predict(obs.numpy()), atol=1e-6)
    logp, sampled, logp_sampled = trainable.log_prob_and_sample(obs, act)
    assert logp.requires_grad and logp_sampled.requires_grad and not sampled.requires_grad
    assert np.all(sampled.numpy() >= adapter.action_low - 1e-5)
    assert np.all(sampled.numpy() <= adapter.action_high + 1e-5)


@pytest.mark.parametrize("name", ["TD3PlusBC", "CQL", "BC-stochastic"])
def test_retrofit_export_round_trip(algos, name, tmp_path):
    algo = algos[name]
    before = {k: v.clone() for k, v in algo.impl.policy.state_dict().items()}
    preferred, nonpreferred = preference_sets()
    retro = Retrofitter(algo, progress=False)
    exported = retro.fit(preferred, nonpreferred, steps=50)
    assert type(exported) is type(algo) and exported is not algo
    for key, value in algo.impl.policy.state_dict().items():
        torch.testing.assert_close(value, before[key], atol=0, rtol=0)
    obs = ballrun_dataset(4).observations[:32]
    expected = retro.policy_.act(obs)
    assert not np.allclose(expected, algo.predict(obs), atol=1e-6)  # it did train
    path = tmp_path / "algo.d3"
    exported.save(str(path))
    np.save(tmp_path / "obs.npy", obs)
    run_fresh(f"""
        import sys
        import numpy as np
        import d3rlpy
        algo = d3rlpy.load_learnable(r"{path}", device="cpu:0")
        obs = np.load(r"{tmp_path / 'obs.npy'}")
        np.save(r"{tmp_path / 'pred.npy'}", algo.predict(obs))
        assert not any(m.startswith("retrofit") for m in sys.modules)
    """)
    np.testing.assert_allclose(np.load(tmp_path / "pred.npy"), expected, atol=1e-6)


@pytest.mark.parametrize("name", ["TD3PlusBC", "CQL"])
def test_presa_with_its_default_fixed_variance_likelihood(algos, name):
    algo = algos[name]
    data = ballrun_dataset(4)
    fb = feedback.synthesize(data, n_pairs=64, segment_length=8, cost_threshold=20.0,
                             max_episode_steps=100)
    retro = Retrofitter(algo, "presa", progress=False, batch_size=4)
    exported = retro.fit(fb, steps=5)
    assert type(exported) is type(algo) and exported is not algo
    obs = data.observations[:32]
    assert not np.allclose(exported.predict(obs), algo.predict(obs), atol=1e-7)


def test_discrete_and_unbuilt_algorithms_are_rejected():
    with pytest.raises(PolicyError, match="no networks yet"):
        wrap(d3rlpy.algos.BCConfig().create(device="cpu:0"))
    discrete = d3rlpy.algos.DiscreteBCConfig().create(device="cpu:0")
    data = ballrun_dataset(4)
    discrete.build_with_dataset(d3rlpy.dataset.MDPDataset(
        data.observations, np.zeros(len(data), dtype=np.int64), data.rewards, data.terminals,
        timeouts=data.timeouts,
    ))
    with pytest.raises(PolicyError, match="discrete-action"):
        wrap(discrete)
