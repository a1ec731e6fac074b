"""Finite-horizon fitted Q evaluation of several policies on several bootstrap datasets at once.

Arrays in, numbers out: this module knows nothing of datasets, adapters or files. ``Q_m(s, a, k)``
is member ``m``'s estimate of the expected sum of each signal (cost, reward) over the ``k`` steps
left in the episode when ``a`` is taken in ``s`` and the policy acts afterwards. FQE (Le, Voloshin
& Yue 2019, "Batch Policy Learning under Constraints") regresses ``Q`` onto the backup of its
previous iterate; with the steps left as an input the backup is the finite-horizon Bellman
equation, so no discount is needed and the values are on DSRL's scale (undiscounted episode sums):

    Q(s_t, a_t, k_t) ← x_t + 1[not terminal_t and k_t > 1] · Q⁻(s_{t+1}, π(s_{t+1}), k_t − 1)  (1)
    J(π) = mean over episodes i of Q(s_0^i, π(s_0^i), H)                                       (2)

``Q⁻`` is the previous iterate (a frozen copy), its values projected onto the range a sum of
``k − 1`` logged per-step values can take (costs are ≥ 0, so no cost estimate is negative).
With exact regressions ``Q(·, ·, k)`` would be exact for ``k ≤ n`` after ``n`` iterations on
the data's support; with a few Adam steps per iteration twice as many are run by default
(:class:`~retrofit.estimate.config.FQEConfig`). Every member (one policy × one bootstrap
dataset) is its own MLP; all of them run in one batched matmul.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from retrofit.device import make_adam
from retrofit.estimate.config import FQEConfig
from retrofit.scaling import safe_scale

Params = list[tuple[torch.Tensor, torch.Tensor]]
_CHUNK = 512  # episodes per forward pass when reading J off the initial states


@dataclass(frozen=True, eq=False)
class FQEProblem:
    """The transitions and the policies' actions FQE needs, as flat DSRL-order arrays.

    ``N`` transitions, ``E`` episodes, ``P`` policies, ``S`` signals (columns of ``signals``).

    Attributes:
        observations, next_observations: ``(N, observation_dim)``.
        actions: ``(N, action_dim)``, the behaviour's actions.
        signals: ``(N, S)`` per-step values to sum (cost, reward).
        next_policy_actions: ``(P, N, action_dim)``, ``π_p(s_{t+1})``.
        steps_left: ``(N,)`` ``k_t = H − t``, the steps from ``t`` to the end of the horizon.
        continues: ``(N,)`` bool, ``not terminal_t and k_t > 1`` (a time-limit cut before ``H``
            continues: the episode had steps left).
        episode_starts: ``(E + 1,)`` row offsets of the episodes.
        initial_policy_actions: ``(P, E, action_dim)``, ``π_p(s_0^i)``.
        horizon: ``H``.
    """

    observations: np.ndarray
    next_observations: np.ndarray
    actions: np.ndarray
    signals: np.ndarray
    next_policy_actions: np.ndarray
    steps_left: np.ndarray
    continues: np.ndarray
    episode_starts: np.ndarray
    initial_policy_actions: np.ndarray
    horizon: int

    @property
    def n_episodes(self) -> int:
        """Number of episodes ``E``."""
        return int(len(self.episode_starts) - 1)


def fit_fqe(
    problem: FQEProblem,
    counts: np.ndarray,
    config: FQEConfig,
    device: torch.device,
) -> np.ndarray:
    """Run FQE for every policy on every bootstrap dataset; return ``J`` as ``(P, K, S)``.

    ``counts`` is ``(K, E)``: how often bootstrap dataset ``b`` holds episode ``i`` (all ones
    for the data as it is). Member ``(p, b)`` samples its batches from dataset ``b`` and reads
    ``J`` (2) off dataset ``b``'s initial states.
    """
    n_policies = problem.next_policy_actions.shape[0]
    n_boot = counts.shape[0]
    horizon = problem.horizon
    t = _Tensors(problem, device)
    rows, offsets, lengths = _member_rows(problem, counts, device)
    policy_of = torch.arange(n_policies * n_boot, device=device) // n_boot
    boot_of = torch.arange(n_policies * n_boot, device=device) % n_boot

    generator = torch.Generator(device="cpu").manual_seed(config.seed)
    params = _init_params(n_policies * n_boot, t.in_dim, config.hidden_sizes, t.n_signals,
                          generator, device)
    optimiser = make_adam([p for layer in params for p in layer], config.learning_rate)
    batch_gen = torch.Generator(device=device).manual_seed(config.seed + 1)
    n_iterations = config.n_iterations if config.n_iterations is not None else 2 * horizon

    for _ in _progress(range(n_iterations), config.progress):
        target = [(w.detach().clone(), b.detach().clone()) for w, b in params]
        for _ in range(config.steps_per_iteration):
            u = torch.rand(len(policy_of), config.batch_size, device=device, generator=batch_gen)
            pos = offsets[boot_of, None] + (u * lengths[boot_of, None]).long()
            idx = rows[pos]  # (M, B) transition rows of each member's own bootstrap dataset
            with torch.no_grad():
                next_x = t.inputs(t.next_obs[idx], t.next_act[policy_of[:, None], idx],
                                  t.steps[idx] - 1)
                next_q = t.clamp(_forward(target, next_x), t.steps[idx] - 1)
                # (1): x_t + 1[continues] · Q⁻(s', π(s'), k − 1), in units of H · scale
                y = t.signals[idx] + t.continues[idx, None] * next_q
            q = _forward(params, t.inputs(t.obs[idx], t.act[idx], t.steps[idx]))
            loss = ((q - y) ** 2).mean(dim=(1, 2)).sum()  # members are independent networks
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()

    values = _initial_values(params, t, policy_of, horizon)  # (M, E, S)
    weights = torch.as_tensor(counts, dtype=torch.float32, device=device)[boot_of]  # (M, E)
    j = (weights[:, :, None] * values).sum(1) / weights.sum(1, keepdim=True)  # (2)
    j = j * t.unit
    return j.reshape(n_policies, n_boot, t.n_signals).double().cpu().numpy()


class _Tensors:
    """The problem on ``device``, normalised: observations and actions standardised by the
    behaviour data, signals in units of ``H · scale`` (scale: the mean |signal| per step)."""

    def __init__(self, problem: FQEProblem, device: torch.device) -> None:
        def tensor(a: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)

        obs_mean, obs_std = _moments(problem.observations)
        act_mean, act_std = _moments(problem.actions)
        scale = np.abs(problem.signals).mean(axis=0).astype(np.float64)
        scale[scale == 0] = 1.0
        self.horizon = problem.horizon
        self.unit = tensor(problem.horizon * scale)
        self.obs = tensor((problem.observations - obs_mean) / obs_std)
        self.next_obs = tensor((problem.next_observations - obs_mean) / obs_std)
        self.act = tensor((problem.actions - act_mean) / act_std)
        self.next_act = tensor((problem.next_policy_actions - act_mean) / act_std)
        self.init_act = tensor((problem.initial_policy_actions - act_mean) / act_std)
        self.init_obs = self.obs[tensor(problem.episode_starts[:-1], torch.long)]
        self.signals = tensor(problem.signals / (problem.horizon * scale))
        self.steps = tensor(problem.steps_left, torch.long)
        self.continues = tensor(problem.continues)
        self.n_signals = int(problem.signals.shape[1])
        self.step_low = torch.clamp(self.signals.min(0).values, max=0.0)
        self.step_high = torch.clamp(self.signals.max(0).values, min=0.0)
        self.in_dim = int(self.obs.shape[1] + self.act.shape[1] + 1)

    def clamp(self, values: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """Project ``k``-step values onto the range a sum of ``k`` logged per-step values can
        take, ``[k · min(x, 0), k · max(x, 0)]`` (a terminal may end the sum early, hence the
        0): a backup never carries an extrapolated value outside what the data allow."""
        k = steps.float()[..., None]
        return torch.minimum(torch.maximum(values, k * self.step_low), k * self.step_high)

    def inputs(self, obs: torch.Tensor, act: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """``[s, a, k / H]``, the Q-network's input."""
        return torch.cat([obs, act, (steps.float() / self.horizon)[..., None]], dim=-1)


def _moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    return mean, safe_scale(x.std(axis=0))


def _member_rows(
    problem: FQEProblem, counts: np.ndarray, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each bootstrap dataset's transition rows (episodes repeated by their counts), flat."""
    episode_of_row = np.repeat(np.arange(problem.n_episodes), np.diff(problem.episode_starts))
    per_boot = [np.repeat(np.arange(len(episode_of_row)), c[episode_of_row]) for c in counts]
    lengths = np.array([len(r) for r in per_boot], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return (
        torch.as_tensor(np.concatenate(per_boot), dtype=torch.long, device=device),
        torch.as_tensor(offsets, dtype=torch.long, device=device),
        torch.as_tensor(lengths, dtype=torch.long, device=device),
    )


def _init_params(
    members: int, in_dim: int, hidden: tuple[int, ...], out_dim: int,
    generator: torch.Generator, device: torch.device,
) -> Params:
    """One ReLU MLP per member, stacked; ``nn.Linear``'s uniform initialisation."""
    params = []
    sizes = (in_dim, *hidden, out_dim)
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        bound = 1.0 / math.sqrt(fan_in)
        w = (torch.rand(members, fan_in, fan_out, generator=generator) * 2 - 1) * bound
        b = (torch.rand(members, 1, fan_out, generator=generator) * 2 - 1) * bound
        params.append((w.to(device).requires_grad_(True), b.to(device).requires_grad_(True)))
    return params


def _forward(params: Params, x: torch.Tensor) -> torch.Tensor:
    """``(M, B, in) -> (M, B, S)``: each member's MLP on its own rows."""
    for w, b in params[:-1]:
        x = torch.relu(torch.baddbmm(b, x, w))
    w, b = params[-1]
    return torch.baddbmm(b, x, w)


@torch.no_grad()
def _initial_values(
    params: Params, t: _Tensors, policy_of: torch.Tensor, horizon: int
) -> torch.Tensor:
    """``Q_m(s_0^i, π_p(s_0^i), H)`` for every member and episode, ``(M, E, S)``."""
    out = []
    n_episodes = t.init_obs.shape[0]
    for lo in range(0, n_episodes, _CHUNK):
        obs = t.init_obs[lo:lo + _CHUNK].expand(len(policy_of), -1, -1)
        act = t.init_act[policy_of, lo:lo + _CHUNK]
        steps = torch.full(obs.shape[:2], horizon, dtype=torch.long, device=obs.device)
        out.append(t.clamp(_forward(params, t.inputs(obs, act, steps)), steps))
    return torch.cat(out, dim=1)


def _progress(iterable: range, show: bool) -> range:
    if not show:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc="FQE", unit="it")  # type: ignore[return-value]
