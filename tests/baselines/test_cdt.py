"""CDT's network, window sampler, policy-with-memory adapter and evaluation hooks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from retrofit.adapters import wrap
from retrofit.adapters.decision_transformer import CDTAdapter
from retrofit.data.dataset import TrajectoryDataset
from retrofit.errors import PolicyError
from retrofit.methods.cdt import best_return_within
from retrofit.methods.registry import get_method
from retrofit.policies.decision_transformer import DecisionTransformer, causal_mask
from retrofit.training.samplers import ContextWindows, returns_to_go


def _model(seed: int = 0, context: int = 6) -> DecisionTransformer:
    torch.manual_seed(seed)
    model = DecisionTransformer(3, 2, -1.0, 1.0, max_episode_steps=50, embedding_dim=16,
                                layers=2, heads=2, context=context, dropout=0.0)
    return model.eval()


def _inputs(k: int = 6) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.randn(2, k, generator=g), torch.randn(2, k, generator=g),
            torch.randn(2, k, 3, generator=g), torch.rand(2, k, 2, generator=g) * 2 - 1,
            torch.arange(k).repeat(2, 1)]


def test_causal_mask_is_lower_triangular():
    assert torch.equal(causal_mask(3), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]]).bool())


@pytest.mark.parametrize("which", [0, 1, 2, 3])  # rtg, ctg, obs, act
def test_changing_a_future_token_leaves_earlier_outputs_unchanged(which: int):
    model = _model()
    base = _inputs()
    changed = [t.clone() for t in base]
    changed[which][:, 4] += 5.0  # step 4 of 6
    with torch.no_grad():
        before, after = model(*base), model(*changed)
    for out_b, out_a in zip(before, after, strict=True):
        assert torch.equal(out_b[:, :4], out_a[:, :4])  # steps 0..3 never see step 4
    mean_b, _, cost_b = before
    mean_a, _, cost_a = after
    if which == 3:  # a_4 enters neither its own action prediction nor earlier steps ...
        assert torch.equal(mean_b[:, 4], mean_a[:, 4])
        assert not torch.equal(cost_b[:, 4], cost_a[:, 4])  # ... but the cost read at a_4
    else:  # R̂_4, Ĉ_4, s_4 do move the action predicted at step 4: the test can fail
        assert not torch.equal(mean_b[:, 4], mean_a[:, 4])


def test_squashed_gaussian_likelihood_by_hand():
    model = _model()
    mean = torch.zeros(1, 1, 2)
    log_std = torch.zeros(1, 1, 2)
    act = torch.tensor([[[0.0, 0.5]]])
    # u = atanh(a); log N(u; 0, 1) − log(1 − a²) per dimension (half-range 1)
    u = np.arctanh(0.5)
    expected = 2 * -0.5 * np.log(2 * np.pi) - 0.5 * u**2 - np.log(1 - 0.25)
    assert model.log_likelihood(mean, log_std, act).item() == pytest.approx(expected, rel=1e-5)
    assert model.entropy(log_std).item() == pytest.approx(np.log(2 * np.pi * np.e), rel=1e-6)


def test_returns_to_go_by_hand():
    out = returns_to_go(np.array([1.0, 2.0, 3.0, 10.0, 20.0]), np.array([0, 3, 5]))
    assert out.tolist() == [6.0, 5.0, 3.0, 30.0, 20.0]


def _tiny_dataset() -> TrajectoryDataset:
    n = 7  # episodes of 4 and 3 steps
    obs = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    timeouts = np.zeros(n, dtype=bool)
    timeouts[[3, 6]] = True
    return TrajectoryDataset.from_arrays({
        "observations": obs, "next_observations": obs + 1,
        "actions": np.zeros((n, 2), np.float32), "rewards": np.arange(1, n + 1, dtype=np.float32),
        "costs": np.array([0, 1, 0, 1, 1, 0, 0], np.float32),
        "terminals": np.zeros(n, dtype=bool), "timeouts": timeouts,
    })


def test_context_windows_pad_after_the_episode_end():
    windows = ContextWindows(_tiny_dataset(), context=3, batch_size=64,
                             device=torch.device("cpu"), seed=0)
    assert windows.max_episode_steps == 4
    batch = windows.sample()
    for i in range(64):
        first = int(batch["obs"][i, 0, 0].item()) // 3
        valid = int(batch["mask"][i].sum())
        end = 4 if first < 4 else 7
        assert valid == min(3, end - first)
        assert batch["rtg"][i, 0].item() == pytest.approx(sum(range(first + 1, end + 1)))
        assert batch["timesteps"][i, 0].item() == (first if first < 4 else first - 4)
        assert torch.all(batch["obs"][i, valid:] == 0)
    returns, costs = windows.episode_returns()
    assert returns.tolist() == [10.0, 18.0] and costs.tolist() == [2.0, 1.0]


def test_best_return_within_by_hand():
    returns, costs = np.array([5.0, 9.0, 7.0]), np.array([10.0, 30.0, 20.0])
    assert best_return_within(returns, costs, 20.0) == 5.0  # cost exactly κ is not safe
    assert best_return_within(returns, costs, 20.5) == 7.0
    assert best_return_within(returns, costs, 1.0) == 9.0  # none within: the highest


def test_adapter_keeps_one_window_per_slot_and_counts_down_the_targets():
    model = _model(context=3)
    model.set_conditioning(100.0, 20.0, reward_scale=0.1, cost_scale=1.0)
    adapter = wrap(model)
    assert isinstance(adapter, CDTAdapter)
    obs = np.random.default_rng(0).normal(size=(5, 2, 3)).astype(np.float32)
    adapter.reset(0)
    adapter.reset(1)
    batched = []
    for t in range(5):
        batched.append(adapter.act(obs[t]))
        adapter.observe(np.array([1.0, 2.0]), np.array([0.0, 1.0]))
    assert adapter._slots[1]["rtg"][-1] == pytest.approx(90.0)
    assert adapter._slots[1]["ctg"][-1] == pytest.approx(15.0)
    # slot 1 alone (its own adapter) acts exactly as it did in the batch
    alone = wrap(model)
    alone.reset(0)
    for t in range(5):
        assert np.allclose(alone.act(obs[t, 1:2]), batched[t][1:2], atol=1e-6)
        alone.observe(np.array([2.0]), np.array([1.0]))
    adapter.retire(0)
    assert len(adapter._slots) == 1 and adapter._slots[0]["ctg"][-1] == pytest.approx(15.0)


def test_fine_tuning_methods_refuse_a_decision_transformer():
    spec = get_method("prefine")
    with pytest.raises(PolicyError, match="decision transformer"):
        spec.trainer(wrap(_model()), spec.config(batch_size=8), device="cpu")


class _Recorder:
    """A memory policy that records what the evaluator tells it (acts with zeros)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        self.calls.append(("act", len(obs)))
        return np.zeros((len(obs), 2), dtype=np.float32)

    def reset(self, slot: int) -> None:
        self.calls.append(("reset", slot))

    def observe(self, rewards: np.ndarray, costs: np.ndarray) -> None:
        self.calls.append(("observe", len(rewards)))

    def retire(self, slot: int) -> None:
        self.calls.append(("retire", slot))


def test_evaluate_calls_the_memory_hooks():
    from retrofit.evaluation import evaluate

    policy = _Recorder()
    result = evaluate(policy, "BallCircle", 20, episodes=3, n_envs=2)
    calls = policy.calls
    assert sum(1 for c in calls if c[0] == "reset") == 3
    assert sum(1 for c in calls if c[0] == "retire") == 2
    acts = [c[1] for c in calls if c[0] == "act"]
    observes = [c[1] for c in calls if c[0] == "observe"]
    assert acts == observes and sum(acts) == int(result.lengths.sum())


def test_a_policy_with_only_some_memory_hooks_is_refused():
    from retrofit.evaluation import _act_fn

    class Half:
        def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
            return obs

        def reset(self, slot: int) -> None:
            pass

    with pytest.raises(PolicyError, match="observe"):
        _act_fn(Half(), True)


def test_a_saved_decision_transformer_loads_with_its_conditioning_and_step_values(tmp_path):
    from retrofit.policies.decision_transformer import StepValueModel, attach_step_values
    from retrofit.policies.io import load_policy, save_policy

    model = _model()
    model.set_conditioning(42.0, 0.0, 1.0, 1.0)
    attach_step_values(model, StepValueModel(3, 2, (8,)))
    loaded = load_policy(save_policy(model, tmp_path / "cdt.pt"))
    assert isinstance(loaded, DecisionTransformer) and loaded.step_values is not None
    assert float(loaded.target_return) == 42.0
    with torch.no_grad():
        for a, b in zip(model(*_inputs()), loaded(*_inputs()), strict=True):
            assert torch.equal(a, b)
