"""Baseline trainers on tiny synthetic data: registry, shapes, determinism, off-clock callbacks."""

import numpy as np
import pytest
import torch

from retrofit import Retrofitter
from retrofit.adapters import wrap
from retrofit.adapters.deterministic_mlp import DeterministicAdapter
from retrofit.data.dataset import TrajectoryDataset
from retrofit.errors import ConfigError, DataError
from retrofit.methods.bc import BCAllConfig, BCSafeConfig, BCTrainer
from retrofit.methods.cpq import CPQConfig, CPQTrainer
from retrofit.methods.ppl import PPLConfig, PPLTrainer
from retrofit.methods.registry import available_methods
from retrofit.methods.safedice import SafeDICEConfig, SafeDICETrainer
from retrofit.policies.deterministic import DeterministicPolicy
from retrofit.policies.gaussian import TanhGaussianPolicy

SMALL = {"hidden_sizes": (16, 16)}


def _episodes(rng, n: int, length: int, action: float, cost: float) -> TrajectoryDataset:
    size = n * length
    timeouts = np.zeros(size, dtype=bool)
    timeouts[length - 1::length] = True
    obs = rng.standard_normal((size, 3)).astype(np.float32)
    return TrajectoryDataset(
        obs, rng.standard_normal((size, 3)).astype(np.float32),
        np.clip(action + 0.05 * rng.standard_normal((size, 2)), -0.99, 0.99).astype(np.float32),
        rng.random(size).astype(np.float32), np.full(size, cost, dtype=np.float32),
        np.zeros(size, dtype=bool), timeouts, action_low=-1.0, action_high=1.0,
    )


@pytest.fixture
def data(rng):
    # preferred: safe (episode cost 0), actions near +0.5; non-preferred: cost 1/step, near -0.5
    return _episodes(rng, 6, 10, 0.5, 0.0), _episodes(rng, 3, 10, -0.5, 1.0)


def _policy(seed: int = 0):
    torch.manual_seed(seed)
    return wrap(TanhGaussianPolicy(3, 2, -np.ones(2), np.ones(2), hidden_sizes=(16, 16)))


def test_baselines_are_registered():
    assert {"cpq", "safedice", "bc-all", "bc-safe", "ppl", "dpo", "prefine"} <= set(
        available_methods())


def _params(adapter):
    return torch.cat([p.detach().flatten() for p in adapter.parameters()])


@pytest.mark.parametrize("name,cls,config", [
    ("cpq", CPQTrainer, CPQConfig(cost_threshold=1.0, batch_size=8, vae_hidden=16, **SMALL)),
    ("safedice", SafeDICETrainer, SafeDICEConfig(batch_size=8, discriminator_steps=3, **SMALL)),
    ("bc-all", BCTrainer, BCAllConfig(batch_size=8, **SMALL)),
    ("bc-safe", BCTrainer, BCSafeConfig(batch_size=8, cost_threshold=1.0, **SMALL)),
    ("ppl", PPLTrainer, PPLConfig(batch_size=8, segment_length=4)),
])
def test_trainers_are_deterministic_and_count_steps(data, name, cls, config):
    runs = []
    for _ in range(2):
        trainer = cls(_policy(), config, device="cpu", seed=3)
        trained = trainer.fit(*data, steps=4, progress=False)
        runs.append(_params(trained))
        extra = 3 if name == "safedice" else 0
        assert trainer.steps_done == 4 + extra
        assert trainer.train_wall_clock_s > 0
        obs = np.zeros((5, 3), dtype=np.float32)
        actions = trained.act(obs)
        assert actions.shape == (5, 2) and np.all(np.abs(actions) <= 1)
    assert torch.equal(runs[0], runs[1])


def test_callbacks_run_off_the_clock(data):
    import time

    trainer = CPQTrainer(_policy(), CPQConfig(cost_threshold=1.0, batch_size=8, vae_hidden=16,
                                              **SMALL), device="cpu")
    seen = []

    def slow(step, tr):
        seen.append((step, tr.train_wall_clock_s))
        time.sleep(0.3)

    trainer.fit(*data, steps=4, progress=False, callback=slow, callback_every=2)
    assert [s for s, _ in seen] == [2, 4]
    assert trainer.train_wall_clock_s < 0.3 * len(seen)
    assert seen[0][1] <= seen[1][1] <= trainer.train_wall_clock_s


def test_safedice_callbacks_only_in_the_second_stage(data):
    trainer = SafeDICETrainer(_policy(), SafeDICEConfig(batch_size=8, discriminator_steps=4,
                                                        **SMALL), device="cpu")
    steps = []
    trainer.fit(*data, steps=4, progress=False, callback=lambda s, t: steps.append(s),
                callback_every=2)
    assert steps == [6, 8]
    assert 0 <= trainer.alpha < 1
    r = trainer.union_rewards
    assert abs(float(r.mean())) < 1e-4 and abs(float(r.std(unbiased=False)) - 1) < 1e-3


def test_safedice_discriminator_separates_labelled_data(data):
    trainer = SafeDICETrainer(_policy(), SafeDICEConfig(batch_size=32, discriminator_steps=150,
                                                        discriminator_learning_rate=1e-3, **SMALL),
                              device="cpu")
    trainer.fit(*data, steps=1, progress=False)
    with torch.no_grad():
        logits = trainer.discriminator(trainer.union_x).squeeze(-1)
    n_pref = len(data[0].observations)
    # non-preferred pairs look "real" (higher logit) and so get lower SafeDICE reward
    assert logits[n_pref:].mean() > logits[:n_pref].mean()
    assert trainer.union_rewards[n_pref:].mean() < trainer.union_rewards[:n_pref].mean()


def test_bc_safe_keeps_only_episodes_within_the_limit(data):
    trainer = BCTrainer(_policy(), BCSafeConfig(batch_size=16, cost_threshold=5.0,
                                                learning_rate=1e-2, **SMALL), device="cpu")
    trained = trainer.fit(*data, steps=150, progress=False)
    # only the safe (+0.5) episodes are cloned
    assert trained.act(data[0].observations).mean() == pytest.approx(0.5, abs=0.1)
    with pytest.raises(DataError, match="cost_threshold"):
        BCTrainer(_policy(), BCSafeConfig(cost_threshold=0.5, **SMALL), device="cpu").fit(data[1])


def test_ppl_raises_preferred_over_nonpreferred_likelihood(data):
    trainer = PPLTrainer(_policy(), PPLConfig(batch_size=20, segment_length=5,
                                              learning_rate=1e-3), device="cpu")
    obs_p = torch.as_tensor(data[0].observations)
    obs_n = torch.as_tensor(data[1].observations)

    def gap(policy):
        with torch.no_grad():
            return float(policy.log_prob(obs_p, torch.as_tensor(data[0].actions)).mean()
                         - policy.log_prob(obs_n, torch.as_tensor(data[1].actions)).mean())

    before = gap(trainer.policy)
    trained = trainer.fit(*data, steps=30, progress=False)
    assert gap(trained) > before


def test_cost_threshold_is_required_with_a_helpful_error():
    with pytest.raises(ConfigError, match="cost_threshold"):
        CPQConfig().check_complete()
    with pytest.raises(ConfigError, match="cost_threshold"):
        BCSafeConfig().check_complete()
    with pytest.raises(ConfigError, match="cost_threshold"):  # the trainer asks before training
        CPQTrainer(wrap(TanhGaussianPolicy(3, 2, -np.ones(2), np.ones(2))), CPQConfig())


def test_retrofitter_runs_baselines_by_name(data):
    policy = TanhGaussianPolicy(3, 2, -np.ones(2), np.ones(2), hidden_sizes=(16, 16))
    out = Retrofitter(policy, "bc-all", device="cpu", progress=False, batch_size=8,
                      hidden_sizes=(16, 16)).fit(*data, steps=3)
    assert isinstance(out, DeterministicPolicy)
    assert isinstance(wrap(out), DeterministicAdapter)
    out = Retrofitter(policy, "safedice", device="cpu", progress=False, batch_size=8,
                      discriminator_steps=2, hidden_sizes=(16, 16)).fit(*data, steps=2)
    assert isinstance(out, TanhGaussianPolicy)
    with pytest.raises(DataError, match="nonpreferred"):
        Retrofitter(policy, "ppl", device="cpu", progress=False).fit(data[0])


def test_deterministic_adapter_log_prob_is_fixed_variance_gaussian():
    torch.manual_seed(0)
    module = DeterministicPolicy(3, 2, -np.ones(2), np.ones(2), hidden_sizes=(8,), sigma=0.5)
    adapter = wrap(module)
    obs = torch.zeros(1, 3)
    mean = module(obs)
    act = mean + torch.tensor([[0.5, 0.0]])
    assert adapter.log_prob(obs, act).item() == pytest.approx(-0.25 / (2 * 0.25))
    logp, sampled, logp_s = adapter.log_prob_and_sample(obs, act)
    assert not sampled.requires_grad and logp_s.requires_grad
    assert torch.all(sampled.abs() <= 1)
