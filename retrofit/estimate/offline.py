"""The offline estimate of a policy's expected episode cost and reward, from the data alone.

``estimate_policies`` runs finite-horizon FQE (:mod:`retrofit.estimate.fqe`) on the cost and the
reward of a DSRL-format ``TrajectoryDataset``, once per bootstrap resample of its episodes, and
reports each signal's bootstrap mean and central percentile interval. It needs per-step costs:
with preferences alone see :func:`retrofit.estimate.likelihood.nonpreferred_log_likelihood`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from retrofit.device import get_device
from retrofit.errors import ConfigError, DataError, PolicyError
from retrofit.estimate.config import FQEConfig
from retrofit.estimate.fqe import FQEProblem, fit_fqe
from retrofit.scaling import safe_scale

_ACT_BATCH = 8192  # observations per policy call when precomputing π(s)


@dataclass(frozen=True)
class Interval:
    """One signal's offline estimate with its bootstrap spread.

    ``samples`` are FQE fits on each bootstrap dataset; ``estimate`` is their mean (an ensemble
    of ``n_bootstrap`` fits) and ``low``/``high`` their ``(1 − confidence) / 2`` and
    ``(1 + confidence) / 2`` percentiles (Efron's percentile interval). ``full_data`` is one more
    fit on the data as they are, kept for reference: one fit carries its own optimisation noise
    (initialisation, minibatches), which on the calibration rows moved it between neighbouring
    checkpoints by more than the bootstrap spread, so the ensemble mean is the reported point
    (docs/results/offline-estimate/README.md, "Estimator change").
    """

    estimate: float
    low: float
    high: float
    confidence: float
    samples: tuple[float, ...]
    full_data: float

    @classmethod
    def from_samples(cls, full_data: float, samples: np.ndarray, confidence: float) -> Interval:
        """The mean and central percentile interval of ``samples``, with the ``full_data``
        fit alongside."""
        values = np.asarray(samples, dtype=np.float64)
        tail = 100.0 * (1.0 - confidence) / 2.0
        low, high = np.percentile(values, [tail, 100.0 - tail])
        return cls(float(values.mean()), float(low), float(high), float(confidence),
                   tuple(float(v) for v in values), float(full_data))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: the numbers and the samples as a list."""
        return {"estimate": self.estimate, "low": self.low, "high": self.high,
                "confidence": self.confidence, "full_data": self.full_data,
                "samples": list(self.samples)}


@dataclass(frozen=True)
class OfflineEstimate:
    """One policy's offline estimate of its expected episode cost and reward.

    ``action_shift`` is the mean distance, in behaviour standard deviations per action
    component, between the policy's action and the data's action in the data's states: near 0
    the policy stays on the data's support; well above 1 FQE extrapolates and its numbers
    deserve less trust than the interval says (the interval covers sampling error only).
    """

    name: str
    cost: Interval
    reward: Interval
    horizon: int
    n_episodes: int
    action_shift: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"name": self.name, "cost": self.cost.to_dict(), "reward": self.reward.to_dict(),
                "horizon": self.horizon, "n_episodes": self.n_episodes,
                "action_shift": self.action_shift}


def estimate_policy(
    policy: Any,
    dataset: Any,
    config: FQEConfig | None = None,
    device: str | torch.device = "auto",
    name: str = "policy",
) -> OfflineEstimate:
    """Estimate ``policy``'s expected episode cost and reward offline from ``dataset``.

    Args:
        policy: a ``PolicyAdapter``, anything ``retrofit.adapters.wrap`` accepts, or a plain
            callable ``f(obs_batch) -> actions``. Policies with memory (a decision transformer)
            are refused: FQE evaluates a policy of the current state only.
        dataset: a ``TrajectoryDataset`` with per-step ``costs`` and ``rewards``. Each episode
            must start at the environment's reset (``t = 0``).
        config: :class:`FQEConfig` (defaults when ``None``).
        device: where FQE trains (``"auto"``: CUDA when available).
        name: the label carried by the result.
    """
    return estimate_policies({name: policy}, dataset, config, device)[0]


def estimate_policies(
    policies: Mapping[str, Any] | Sequence[Any],
    dataset: Any,
    config: FQEConfig | None = None,
    device: str | torch.device = "auto",
) -> list[OfflineEstimate]:
    """Estimate several policies (e.g. checkpoints along training) in one batched FQE run.

    ``policies`` is a mapping label -> policy, or a sequence (labelled ``checkpoint 0``, ...).
    Every policy is evaluated on the data and on the same ``n_bootstrap`` resampled datasets,
    so differences between them are not blurred by different draws. See
    :func:`estimate_policy` for the arguments.
    """
    config = config or FQEConfig()
    named = _named(policies)
    check_estimation_data(dataset)
    horizon = _horizon(dataset, config)
    dev = get_device(device)

    starts = np.asarray(dataset.episode_starts, dtype=np.int64)
    observations = np.asarray(dataset.observations, dtype=np.float32)
    next_observations = np.asarray(dataset.next_observations, dtype=np.float32)
    actions = np.asarray(dataset.actions, dtype=np.float32)
    first_rows = starts[:-1]
    next_actions, initial_actions, shifts = [], [], []
    for label, policy in named:
        act = _act_fn(policy, config.deterministic, label, actions.shape[1])
        next_actions.append(act(next_observations))
        initial_actions.append(act(observations[first_rows]))
        shifts.append(_action_shift(act(observations), actions))

    lengths = np.diff(starts)
    t_in_episode = np.arange(len(actions)) - np.repeat(starts[:-1], lengths)
    steps_left = horizon - t_in_episode
    problem = FQEProblem(
        observations=observations,
        next_observations=next_observations,
        actions=actions,
        signals=np.stack([dataset.costs, dataset.rewards], axis=1).astype(np.float64),
        next_policy_actions=np.stack(next_actions),
        steps_left=steps_left,
        continues=~np.asarray(dataset.terminals, dtype=bool) & (steps_left > 1),
        episode_starts=starts,
        initial_policy_actions=np.stack(initial_actions),
        horizon=horizon,
    )
    counts = np.vstack([
        np.ones((1, problem.n_episodes), dtype=np.int64),  # member 0: the data as they are
        bootstrap_counts(problem.n_episodes, config.n_bootstrap, config.seed),
    ])
    values = fit_fqe(problem, counts, config, dev)  # (P, 1 + K, 2): cost, reward
    return [
        OfflineEstimate(
            name=label,
            cost=Interval.from_samples(values[p, 0, 0], values[p, 1:, 0], config.confidence),
            reward=Interval.from_samples(values[p, 0, 1], values[p, 1:, 1], config.confidence),
            horizon=horizon,
            n_episodes=problem.n_episodes,
            action_shift=shifts[p],
        )
        for p, (label, _) in enumerate(named)
    ]


def bootstrap_counts(n_episodes: int, n_bootstrap: int, seed: int) -> np.ndarray:
    """``(n_bootstrap, n_episodes)`` counts: each row draws ``n_episodes`` episodes with
    replacement (Efron's bootstrap over trajectories, the unit the data are independent in)."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_episodes, size=(n_bootstrap, n_episodes))
    return np.stack([np.bincount(row, minlength=n_episodes) for row in draws])


def _named(policies: Mapping[str, Any] | Sequence[Any]) -> list[tuple[str, Any]]:
    if isinstance(policies, Mapping):
        named = [(str(k), v) for k, v in policies.items()]
    elif isinstance(policies, Sequence) and not isinstance(policies, str):
        named = [(f"checkpoint {i}", p) for i, p in enumerate(policies)]
    else:
        raise ConfigError(
            f"checkpoints: expected a mapping label -> policy or a list of policies; got "
            f"{type(policies).__name__}."
        )
    if not named:
        raise ConfigError(
            "checkpoints is empty: pass at least one policy (e.g. {'step 500': policy})."
        )
    return named


def check_estimation_data(dataset: Any) -> None:
    """Refuse (``DataError``) data the offline estimate cannot use: no per-step costs or
    rewards, or fewer than 2 episodes for the bootstrap."""
    for field in ("costs", "rewards"):
        if getattr(dataset, field, None) is None:
            hint = (
                " Without per-step costs the episode cost cannot be estimated; with preferences "
                "alone use retrofit.estimate.nonpreferred_log_likelihood on held-out D_np "
                "(docs/offline-estimate.md)." if field == "costs" else ""
            )
            raise DataError(
                f"dataset has no {field!r} (got {type(dataset).__name__}): the offline estimate "
                f"fits FQE to the per-step {field} of a retrofit.TrajectoryDataset.{hint}"
            )
    starts = getattr(dataset, "episode_starts", None)
    if starts is None or len(starts) < 3:
        found = "no episode_starts" if starts is None else f"{len(starts) - 1} episode(s)"
        raise DataError(
            f"dataset: the bootstrap needs a TrajectoryDataset of at least 2 episodes; found "
            f"{found}."
        )


def _horizon(dataset: Any, config: FQEConfig) -> int:
    longest = int(np.diff(dataset.episode_starts).max())
    if config.horizon is not None:
        horizon, origin = config.horizon, "config.horizon"
    elif getattr(dataset, "task", None):
        from retrofit.tasks import task_info

        horizon = task_info(dataset.task).max_episode_steps
        origin = f"the max_episode_steps of {dataset.task}"
    else:
        return longest
    if longest > horizon:
        raise DataError(
            f"horizon={horizon} ({origin}) is shorter than the longest episode ({longest} "
            "steps): set FQEConfig(horizon=...) to the environment's time limit."
        )
    return int(horizon)


def _act_fn(policy: Any, deterministic: bool, label: str, action_dim: int) -> Any:
    """``obs -> actions`` in batches, clipped into the policy's action box when it has one."""
    act = getattr(policy, "act", None)
    if callable(act):
        adapter = policy
    elif callable(policy) and not isinstance(policy, torch.nn.Module):
        adapter = None
    else:
        from retrofit.adapters import wrap

        adapter = wrap(policy)
    if adapter is not None and callable(getattr(adapter, "observe", None)):
        raise PolicyError(
            f"checkpoints[{label!r}]: {type(adapter).__name__} acts on the episode so far "
            "(memory hooks reset/observe); FQE evaluates policies of the current state only."
        )
    low = getattr(adapter, "action_low", None)
    high = getattr(adapter, "action_high", None)

    def run(obs: np.ndarray) -> np.ndarray:
        parts = []
        for lo in range(0, len(obs), _ACT_BATCH):
            batch = obs[lo:lo + _ACT_BATCH]
            out = (adapter.act(batch, deterministic=deterministic) if adapter is not None
                   else policy(batch))
            parts.append(np.asarray(out, dtype=np.float32).reshape(len(batch), -1))
        actions = np.concatenate(parts)
        if actions.shape[1] != action_dim or not np.all(np.isfinite(actions)):
            raise PolicyError(
                f"checkpoints[{label!r}]: the policy returned actions of shape "
                f"{actions.shape} (finite: {bool(np.all(np.isfinite(actions)))}); the dataset's "
                f"actions have {action_dim} components. Pass a policy for this task."
            )
        if low is not None and high is not None:
            actions = np.clip(actions, low, high)  # the environment clips what it receives
        return actions

    return run


def _action_shift(policy_actions: np.ndarray, actions: np.ndarray) -> float:
    std = safe_scale(actions.std(axis=0))
    return float(np.abs((policy_actions - actions) / std).mean())
