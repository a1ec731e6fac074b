"""The offline estimate (retrofit.estimate): FQE on a deterministic chain whose true values are
known, the bootstrap interval, checkpoint selection, the safety report files and bad inputs."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from retrofit.data.dataset import TrajectoryDataset
from retrofit.data.shipped import default_dataset_path
from retrofit.errors import ConfigError, DataError, PolicyError
from retrofit.estimate import (
    FQEConfig,
    Interval,
    OfflineEstimate,
    estimate_policies,
    estimate_policy,
    nonpreferred_log_likelihood,
    safety_report,
    select_checkpoint,
)

H = 10
TINY = FQEConfig(n_bootstrap=5, hidden_sizes=(32, 32), batch_size=64, n_iterations=3 * H,
                 steps_per_iteration=30, learning_rate=3e-3)


def chain(n_episodes: int = 40, seed: int = 0) -> TrajectoryDataset:
    """Deterministic chain of ``H`` steps: ``s = (t / H, f)`` with a flag ``f ∈ {0, 1}`` drawn
    per episode; the behaviour plays ``a = 2f − 1``; cost 1 when ``a > 0`` from ``t / H ≥ 0.3``
    on (7 steps), reward ``1 + cost + t / H`` (the costly action pays)."""
    rng = np.random.default_rng(seed)
    trajectories = []
    for _ in range(n_episodes):
        flag = float(rng.integers(0, 2))
        x = np.arange(H + 1) / H
        obs = np.stack([x, np.full(H + 1, flag)], axis=1).astype(np.float32)
        act = np.full((H, 1), 2 * flag - 1, dtype=np.float32)
        cost = ((act[:, 0] > 0) & (x[:-1] >= 0.3)).astype(np.float32)
        trajectories.append({
            "observations": obs[:-1], "next_observations": obs[1:], "actions": act,
            "rewards": (1 + cost + x[:-1]).astype(np.float32), "costs": cost,
            "terminals": np.zeros(H, dtype=bool), "timeouts": np.arange(H) == H - 1,
        })
    return TrajectoryDataset.from_trajectories(trajectories)


def coin_chain(n_episodes: int = 40, seed: int = 0) -> TrajectoryDataset:
    """The chain with ``s = (t / H, 0)`` and a behaviour that tosses a coin for ``a = ±1`` at
    every step, so every action is on the data's support; costs and rewards as in ``chain``."""
    rng = np.random.default_rng(seed)
    trajectories = []
    for _ in range(n_episodes):
        x = np.arange(H + 1) / H
        obs = np.stack([x, np.zeros(H + 1)], axis=1).astype(np.float32)
        act = rng.choice([-1.0, 1.0], size=(H, 1)).astype(np.float32)
        cost = ((act[:, 0] > 0) & (x[:-1] >= 0.3)).astype(np.float32)
        trajectories.append({
            "observations": obs[:-1], "next_observations": obs[1:], "actions": act,
            "rewards": (1 + cost + x[:-1]).astype(np.float32), "costs": cost,
            "terminals": np.zeros(H, dtype=bool), "timeouts": np.arange(H) == H - 1,
        })
    return TrajectoryDataset.from_trajectories(trajectories)


def late(obs: np.ndarray) -> np.ndarray:
    """``a = +1`` from ``t / H ≥ 0.6`` on: true episode cost 4, reward 14.5 + 4."""
    return np.where(obs[:, :1] >= 0.6 - 1e-6, 1.0, -1.0).astype(np.float32)


def behaviour(obs: np.ndarray) -> np.ndarray:
    return 2 * obs[:, 1:2] - 1


def always_on(obs: np.ndarray) -> np.ndarray:
    return np.ones((len(obs), 1), dtype=np.float32)


def always_off(obs: np.ndarray) -> np.ndarray:
    return -np.ones((len(obs), 1), dtype=np.float32)


@pytest.fixture(scope="module")
def data() -> TrajectoryDataset:
    return chain()


@pytest.fixture(scope="module")
def estimates(data: TrajectoryDataset) -> list[OfflineEstimate]:
    torch.set_num_threads(1)
    return estimate_policies({"behaviour": behaviour}, data, TINY, device="cpu")


@pytest.fixture(scope="module")
def coin_estimates() -> list[OfflineEstimate]:
    torch.set_num_threads(1)
    policies = {"off": always_off, "late": late, "on": always_on}
    return estimate_policies(policies, coin_chain(), TINY, device="cpu")


def test_fqe_of_the_behaviour_policy_gives_the_empirical_episode_means(data, estimates):
    rewards, costs = data.episode_returns()
    est = estimates[0]
    assert est.name == "behaviour" and est.horizon == H and est.action_shift == 0.0
    # FQE on the data as they are reproduces the data's episode means; the reported estimate is
    # the mean of the bootstrap fits, which also carries the resampling (5 resamples here)
    assert est.cost.full_data == pytest.approx(costs.mean(), abs=0.03 * H)
    assert est.reward.full_data == pytest.approx(rewards.mean(), abs=0.03 * H)
    assert est.cost.low <= est.cost.estimate <= est.cost.high


def test_each_bootstrap_member_matches_its_own_resampled_data(data, estimates):
    from retrofit.estimate.offline import bootstrap_counts

    _, costs = data.episode_returns()
    counts = bootstrap_counts(data.n_episodes, TINY.n_bootstrap, TINY.seed)
    np.testing.assert_allclose(estimates[0].cost.samples, counts @ costs / data.n_episodes,
                               atol=0.03 * H)


def test_a_costlier_policy_gets_a_higher_cost_estimate(coin_estimates):
    costs = [e.cost.estimate for e in coin_estimates]
    rewards = [e.reward.estimate for e in coin_estimates]
    np.testing.assert_allclose(costs, [0.0, 4.0, 7.0], atol=0.05 * H)  # true values
    np.testing.assert_allclose(rewards, [14.5, 18.5, 21.5], atol=0.05 * H)
    assert costs[0] < costs[1] < costs[2] and rewards[0] < rewards[1] < rewards[2]
    assert min(e.cost.low for e in coin_estimates) >= 0  # a sum of costs >= 0 is never negative


def test_bootstrap_interval_contains_the_mean_and_the_data_mean(data, estimates):
    _, costs = data.episode_returns()
    cost = estimates[0].cost
    assert cost.low <= cost.estimate <= cost.high
    assert cost.estimate == pytest.approx(float(np.mean(cost.samples)))
    assert cost.low <= costs.mean() <= cost.high
    assert cost.high - cost.low > 0.1  # the episodes differ, so the resamples do
    assert (cost.low, cost.high) == tuple(np.percentile(cost.samples, [5, 95]))


def test_a_terminal_ends_the_sum(data):
    """Episodes cut by a terminal at t = 6 < H: the costs after it must not be imagined."""
    cut = [{k: v[:6].copy() for k, v in data.episode(i).items()} for i in range(data.n_episodes)]
    for episode in cut:
        episode["terminals"][-1], episode["timeouts"][-1] = True, False
    short = TrajectoryDataset.from_trajectories(cut)
    torch.set_num_threads(1)
    est = estimate_policy(behaviour, short, replace(TINY, horizon=H), device="cpu")
    _, costs = short.episode_returns()  # 3 costly steps (t = 3, 4, 5) when f = 1
    assert est.horizon == H
    assert est.cost.full_data == pytest.approx(costs.mean(), abs=0.03 * H)


def test_same_seed_same_estimate(data):
    torch.set_num_threads(1)
    config = FQEConfig(n_bootstrap=2, hidden_sizes=(8,), batch_size=16, steps_per_iteration=5)
    first = estimate_policy(behaviour, data, config, device="cpu")
    second = estimate_policy(behaviour, data, config, device="cpu")
    assert first.cost.samples == second.cost.samples


def test_estimate_runs_on_shipped_data_with_a_wrapped_policy():
    from retrofit.policies.gaussian import TanhGaussianPolicy

    torch.manual_seed(0)
    data = TrajectoryDataset.from_hdf5(default_dataset_path("BallRun")).select_episodes(range(6))
    policy = TanhGaussianPolicy(data.observation_dim, data.action_dim, [-1.0] * 2, [1.0] * 2,
                                hidden_sizes=(16,))
    config = FQEConfig(n_bootstrap=3, hidden_sizes=(16,), batch_size=32, n_iterations=4,
                       steps_per_iteration=5)
    est = estimate_policy(policy, data, config, device="cpu", name="untrained")
    assert est.horizon == 100 and est.n_episodes == 6  # BallRun's time limit
    assert np.isfinite([est.cost.estimate, est.reward.estimate, est.cost.full_data]).all()
    assert est.action_shift > 0


def make_estimate(name: str, cost: tuple[float, float, float], reward: float) -> OfflineEstimate:
    mean, low, high = cost
    return OfflineEstimate(
        name, Interval(mean, low, high, 0.9, (low, mean, high), mean),
        Interval(reward, reward, reward, 0.9, (reward,), reward), H, 10, 0.0,
    )


def test_selection_takes_the_best_reward_within_the_limit():
    estimates = [
        make_estimate("a", (5, 4, 9), 100),
        make_estimate("b", (8, 6, 10), 300),  # upper bound exactly κ counts as within
        make_estimate("c", (9, 7, 10.5), 900),  # mean within κ, upper bound not
        make_estimate("d", (2, 1, 3), 200),
    ]
    selection = select_checkpoint(estimates, 10)
    assert (selection.index, selection.name, selection.within_limit) == (1, "b", True)
    assert "3 of 4" in selection.reason


def test_selection_falls_back_to_the_lowest_upper_bound_and_says_so():
    estimates = [make_estimate("a", (20, 15, 30), 500), make_estimate("b", (14, 12, 16), 100)]
    selection = select_checkpoint(estimates, 10)
    assert (selection.index, selection.within_limit) == (1, False)
    assert "falling back" in selection.reason and "not estimated safe" in selection.reason


def test_safety_report_writes_json_markdown_and_figure(tmp_path):
    torch.set_num_threads(1)
    report = safety_report({"step 1": always_on, "step 2": late, "step 3": always_off},
                           coin_chain(), cost_threshold=6.0, out_dir=tmp_path, config=TINY,
                           device="cpu")
    assert report.selection.name == "step 2"  # costs 7, 4, 0: step 2 earns more than step 3
    payload = json.loads((tmp_path / "safety_report.json").read_text())
    assert payload["selection"]["name"] == "step 2" and payload["cost_threshold"] == 6.0
    assert [c["within_limit"] for c in payload["checkpoints"]] == [False, True, True]
    markdown = (tmp_path / "safety_report.md").read_text()
    assert "**Selected: step 2.**" in markdown and "safety_report.png" in markdown
    assert (tmp_path / "safety_report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nonpreferred_log_likelihood_is_higher_for_the_policy_that_took_those_actions():
    from retrofit.policies.deterministic import DeterministicPolicy

    torch.manual_seed(0)
    held_out = chain(n_episodes=4)
    on, off = (DeterministicPolicy(2, 1, [-1.0], [1.0], hidden_sizes=(4,)) for _ in range(2))
    for policy, sign in ((on, 1.0), (off, -1.0)):  # the last bias alone sets the action
        with torch.no_grad():
            for p in policy.parameters():
                p.zero_()
            list(policy.parameters())[-1].fill_(sign * 3.0)
    held_out_on = held_out.select_episodes(
        [i for i in range(4) if held_out.episode(i)["actions"][0, 0] > 0] or [0])
    assert nonpreferred_log_likelihood(on, held_out_on, device="cpu") > \
        nonpreferred_log_likelihood(off, held_out_on, device="cpu")


@pytest.mark.parametrize("cost_threshold", [-1.0, float("nan")])
def test_negative_cost_threshold_is_refused(data, cost_threshold):
    with pytest.raises(ConfigError, match="cost_threshold"):
        select_checkpoint([make_estimate("a", (1, 0, 2), 1)], cost_threshold)
    with pytest.raises(ConfigError, match="cost_threshold"):
        safety_report([behaviour], data, cost_threshold, "unused", TINY, device="cpu")


def test_empty_checkpoint_list_is_refused(data):
    with pytest.raises(ConfigError, match="checkpoints"):
        select_checkpoint([], 10)
    with pytest.raises(ConfigError, match="checkpoints"):
        estimate_policies({}, data, TINY, device="cpu")


def test_dataset_without_costs_is_refused_and_points_to_the_likelihood(data):
    class PreferencesOnly:
        observations, actions, rewards = data.observations, data.actions, data.rewards
        costs = None

    with pytest.raises(DataError, match="'costs'.*nonpreferred_log_likelihood"):
        estimate_policy(behaviour, PreferencesOnly(), TINY, device="cpu")


def test_bad_policy_and_settings_are_refused(data):
    with pytest.raises(PolicyError, match="shape"):
        estimate_policy(lambda obs: np.zeros((len(obs), 3)), data, TINY, device="cpu")
    with pytest.raises(DataError, match="horizon"):
        estimate_policy(behaviour, data, FQEConfig(horizon=H - 1), device="cpu")
    with pytest.raises(DataError, match="at least 2 episodes"):
        estimate_policy(behaviour, data.select_episodes([0]), TINY, device="cpu")

    class WithMemory:
        action_low, action_high = np.array([-1.0]), np.array([1.0])

        def act(self, obs, deterministic=True):
            return behaviour(obs)

        def observe(self, rewards, costs):
            pass

    with pytest.raises(PolicyError, match="memory"):
        estimate_policy(WithMemory(), data, TINY, device="cpu")
    with pytest.raises(ConfigError, match="confidence"):
        FQEConfig(confidence=1.5)
    with pytest.raises(ConfigError, match="n_bootstrap"):
        FQEConfig(n_bootstrap=0)
