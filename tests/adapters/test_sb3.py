from __future__ import annotations

import numpy as np
import pytest
import stable_baselines3 as sb3
import torch
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize  # noqa: E402

from retrofit import Retrofitter, feedback  # noqa: E402
from retrofit.adapters import wrap  # noqa: E402
from retrofit.adapters.sb3 import SB3Adapter  # noqa: E402
from retrofit.envs import make_env  # noqa: E402
from retrofit.errors import PolicyError  # noqa: E402

from . import (  # noqa: E402
    SHIFTED_HIGH,
    SHIFTED_LOW,
    ShiftedBox,
    ballrun_dataset,
    preference_sets,
    run_fresh,
)

LOW, HIGH = SHIFTED_LOW, SHIFTED_HIGH


SMALL = {"net_arch": [16]}
ON_POLICY = {"n_steps": 128, "batch_size": 64, "n_epochs": 1}
OFF_POLICY = {"learning_starts": 50, "batch_size": 32, "buffer_size": 1000}
CASES = {
    "PPO": (sb3.PPO, ON_POLICY, 256, False),
    "PPO-shifted": (sb3.PPO, ON_POLICY, 256, True),
    "PPO-gSDE-squashed": (
        sb3.PPO, {**ON_POLICY, "use_sde": True, "policy_kwargs": {**SMALL, "squash_output": True}},
        256, True,
    ),
    "A2C": (sb3.A2C, {"n_steps": 8}, 128, False),
    "SAC": (sb3.SAC, OFF_POLICY, 200, False),
    "SAC-shifted": (sb3.SAC, OFF_POLICY, 200, True),
    "TD3-shifted": (sb3.TD3, OFF_POLICY, 200, True),
    "DDPG": (sb3.DDPG, OFF_POLICY, 200, False),
}


def _train(name: str) -> sb3.common.base_class.BaseAlgorithm:
    cls, kwargs, steps, shifted = CASES[name]
    env = ShiftedBox(make_env("BallRun")) if shifted else make_env("BallRun")
    kwargs = {**kwargs, "policy_kwargs": dict(kwargs.get("policy_kwargs", SMALL))}  # SB3 edits it
    return cls("MlpPolicy", env, seed=0, device="cpu", **kwargs).learn(steps)


@pytest.fixture(scope="module")
def models() -> dict:
    return {name: _train(name) for name in CASES}


def _batch(model, n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    data = ballrun_dataset(4)
    rng = np.random.default_rng(1)
    low, high = model.action_space.low, model.action_space.high
    act = rng.uniform(low, high, size=(n, len(low))).astype(np.float32)
    act[:4] = low  # the box's corners and edges, where clipping and squashing bite
    act[4:8] = high
    return torch.as_tensor(data.observations[:n]), torch.as_tensor(act)


def _library_log_prob(model, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    """SB3's own log-likelihood of env-unit actions (plus the documented rescaling Jacobian)."""
    low, high = model.action_space.low, model.action_space.high
    jacobian = -float(np.log((high.astype(np.float64) - low) / 2).sum())
    with torch.no_grad():
        if isinstance(model, sb3.SAC):
            mean, log_std, kwargs = model.actor.get_action_dist_params(obs)
            dist = model.actor.action_dist.proba_distribution(mean, log_std, **kwargs)
            return dist.log_prob(model.policy.scale_action(act)) + jacobian
        if isinstance(model, sb3.TD3):  # DDPG too: fixed-σ Gaussian around predict()
            mean = torch.as_tensor(model.predict(obs.numpy(), deterministic=True)[0])
            return -((mean - act) ** 2).sum(-1)  # σ = 1/√2, see test_log_prob_matches_sb3
        if model.policy.squash_output:
            return model.policy.evaluate_actions(obs, model.policy.scale_action(act))[1] + jacobian
        return model.policy.evaluate_actions(obs, act)[1]


@pytest.mark.parametrize("name", list(CASES))
def test_log_prob_matches_sb3(models, name):
    model = models[name]
    adapter = wrap(model)
    assert isinstance(adapter, SB3Adapter)
    if adapter.kind == "deterministic":  # σ = 1/√2 keeps log π = -||μ - a||² at float32 scale
        adapter = SB3Adapter(model, sigma=2**-0.5)
    obs, act = _batch(model)
    with torch.no_grad():
        got = adapter.log_prob(obs, act)
    expected = _library_log_prob(model, obs, act)
    assert got.shape == (len(obs),)
    # rows 0-7 are the box's corners, where a squashed log π reaches ~1e6: still within 1e-5,
    # because the adapter sums in SB3's order
    torch.testing.assert_close(got, expected.float(), atol=1e-5, rtol=0)
    # leading sample dims: (K, B, A) -> (K, B), one forward pass
    with torch.no_grad():
        stacked = adapter.log_prob(obs, torch.stack([act, act.flip(0)]))
        flipped = adapter.log_prob(obs, act.flip(0))
    torch.testing.assert_close(stacked, torch.stack([got, flipped]), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", list(CASES))
def test_act_and_samples_are_env_actions(models, name):
    model = models[name]
    adapter = wrap(model)
    obs, act = _batch(model)
    np.testing.assert_allclose(
        adapter.act(obs.numpy()), model.predict(obs.numpy(), deterministic=True)[0], atol=1e-6
    )
    trainable = adapter.trainable_copy()
    mean = trainable.mean_action(obs)  # PreSa's fixed-variance likelihood differentiates this
    assert mean.requires_grad
    low, high = model.action_space.low, model.action_space.high
    np.testing.assert_allclose(np.clip(mean.detach().numpy(), low, high),
                               model.predict(obs.numpy(), deterministic=True)[0], atol=1e-6)
    logp, sampled, logp_sampled = trainable.log_prob_and_sample(obs, act)
    assert not sampled.requires_grad and logp.requires_grad and logp_sampled.requires_grad
    assert np.all(sampled.numpy() >= model.action_space.low - 1e-6)
    assert np.all(sampled.numpy() <= model.action_space.high + 1e-6)
    with torch.no_grad():
        again = trainable.log_prob(obs, sampled)
    torch.testing.assert_close(logp_sampled.detach(), again, atol=1e-5, rtol=2e-7)
    # only the actor is trained: SAC/TD3 critics and PPO's value head are left out
    n_actor = sum(p.numel() for p in trainable.parameters())
    assert 0 < n_actor < sum(p.numel() for p in model.policy.parameters())


def test_vec_normalize_statistics_are_applied():
    venv = VecNormalize(DummyVecEnv([lambda: make_env("BallRun")]), norm_reward=False)
    model = sb3.PPO(
        "MlpPolicy", venv, seed=0, device="cpu", policy_kwargs=dict(SMALL), **ON_POLICY
    )
    model.learn(256)
    adapter = wrap(model)  # VecNormalize found on model.get_env()
    obs, act = _batch(model)
    normalised = torch.as_tensor(venv.normalize_obs(obs.numpy().astype(np.float64)))
    with torch.no_grad():
        expected = model.policy.evaluate_actions(normalised.float(), act)[1]
        torch.testing.assert_close(adapter.log_prob(obs, act), expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(
        adapter.act(obs.numpy()),
        model.predict(normalised.numpy(), deterministic=True)[0],
        atol=1e-6,
    )
    raw = SB3Adapter(model, vec_normalize=False)
    assert not torch.allclose(raw.log_prob(obs, act), adapter.log_prob(obs, act))


@pytest.mark.parametrize("name", ["PPO", "SAC-shifted", "TD3-shifted"])
def test_retrofit_export_round_trip(models, name, tmp_path):
    model = models[name]
    before = {k: v.clone() for k, v in model.policy.state_dict().items()}
    preferred, nonpreferred = preference_sets()
    if name != "PPO":  # the shifted box: put the data's actions in the policy's action space
        preferred, nonpreferred = (
            _shift_actions(preferred), _shift_actions(nonpreferred)
        )
    retro = Retrofitter(model, progress=False)
    exported = retro.fit(preferred, nonpreferred, steps=50)
    assert type(exported) is type(model) and exported is not model
    for key, value in model.policy.state_dict().items():  # the user's model is untouched
        torch.testing.assert_close(value, before[key], atol=0, rtol=0)
    changed = any(
        not torch.equal(v, before[k]) for k, v in exported.policy.state_dict().items()
    )
    assert changed
    obs = ballrun_dataset(4).observations[:32]
    expected = retro.policy_.act(obs)
    np.testing.assert_allclose(exported.predict(obs, deterministic=True)[0], expected, atol=1e-6)
    path = tmp_path / "model.zip"
    exported.save(path)
    np.save(tmp_path / "obs.npy", obs)
    cls = type(model).__name__
    run_fresh(f"""
        import sys
        import numpy as np
        from stable_baselines3 import {cls}
        model = {cls}.load(r"{path}", device="cpu")
        obs = np.load(r"{tmp_path / 'obs.npy'}")
        np.save(r"{tmp_path / 'pred.npy'}", model.predict(obs, deterministic=True)[0])
        assert not any(m.startswith("retrofit") for m in sys.modules)
    """)
    np.testing.assert_allclose(np.load(tmp_path / "pred.npy"), expected, atol=1e-6)


@pytest.mark.parametrize("name", ["PPO", "SAC-shifted", "TD3-shifted"])
def test_presa_with_its_default_fixed_variance_likelihood(models, name):
    model = models[name]
    data = ballrun_dataset(4)
    if name != "PPO":
        data = _shift_actions(data)
    fb = feedback.synthesize(data, n_pairs=64, segment_length=8, cost_threshold=20.0,
                             max_episode_steps=100)
    retro = Retrofitter(model, "presa", progress=False, batch_size=4)
    assert retro.config.likelihood == "fixed_variance"
    exported = retro.fit(fb, steps=5)
    assert type(exported) is type(model) and exported is not model
    obs = data.observations[:32]
    assert not np.allclose(exported.predict(obs, deterministic=True)[0],
                           model.predict(obs, deterministic=True)[0], atol=1e-7)


def _shift_actions(data):
    from retrofit.data.dataset import TrajectoryDataset

    arrays = data.to_dict()
    arrays["actions"] = (LOW + (arrays["actions"] + 1) * (HIGH - LOW) / 2).astype(np.float32)
    return TrajectoryDataset.from_arrays(arrays, action_low=LOW, action_high=HIGH)


def test_discrete_policy_is_rejected():
    model = sb3.PPO(
        "MlpPolicy", "CartPole-v1", device="cpu", policy_kwargs=dict(SMALL), n_steps=16,
        batch_size=16,
    )
    with pytest.raises(PolicyError, match="discrete-action"):
        wrap(model)


def test_policy_module_instead_of_model_is_rejected(models):
    with pytest.raises(PolicyError, match="pass the model itself"):
        wrap(models["PPO"].policy)


def test_data_of_another_task_is_rejected(models):
    preferred, nonpreferred = preference_sets()
    arrays = {k: v for k, v in preferred.to_dict().items()}
    for key in ("observations", "next_observations"):
        arrays[key] = np.concatenate([arrays[key], arrays[key][:, :2]], axis=1)
    from retrofit.data.dataset import TrajectoryDataset

    wide = TrajectoryDataset.from_arrays(arrays, action_low=-1.0, action_high=1.0)
    with pytest.raises(PolicyError,
                       match=r"observation_dim: the policy takes observations of size 7"):
        Retrofitter(models["SAC"], progress=False).fit(wide, wide, steps=1)


def test_sigma_is_settable(models):
    model = models["DDPG"]
    obs, act = _batch(model)
    with torch.no_grad():
        base = SB3Adapter(model).log_prob(obs, act)
        wide = SB3Adapter(model, sigma=0.2).log_prob(obs, act)
    torch.testing.assert_close(wide, base / 4, atol=1e-5, rtol=1e-5)


def test_squashed_is_true_for_sac_only() -> None:
    kinds = {name: wrap(cls("MlpPolicy", make_env("BallRun"), seed=0, device="cpu",
                            policy_kwargs=dict(SMALL))).squashed
             for name, cls in (("SAC", sb3.SAC), ("TD3", sb3.TD3), ("PPO", sb3.PPO))}
    assert kinds == {"SAC": True, "TD3": False, "PPO": False}
