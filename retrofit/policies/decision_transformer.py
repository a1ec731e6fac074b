"""The Constrained Decision Transformer's network (CDT; Liu et al. 2023, "Constrained Decision
Transformer for Offline Safe Reinforcement Learning", §4).

A causal transformer over the interleaved tokens ``(R̂_t, Ĉ_t, s_t, a_t)`` of a context window of
``K`` steps: return-to-go, cost-to-go, state and action, each embedded linearly and added to a
learned embedding of the episode step ``t``. Token ``i`` attends only to tokens ``j ≤ i``
(:func:`causal_mask`), so the output at ``s_t``'s token (which predicts ``a_t``) sees the targets
and states up to ``t`` and the actions before ``t``, never the future. The action head is a
tanh-squashed diagonal Gaussian (CDT's stochastic head); an auxiliary head on ``a_t``'s token
predicts whether the step's cost is positive (CDT §4.2, the cost-prediction loss weighted 0.02).

The conditioning of evaluation (target return, target cost, the reward/cost scales the model was
trained with) lives in buffers, so a saved module acts as it was trained to act.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from retrofit.policies.box import register_policy_class
from retrofit.policies.gaussian import ATANH_EPS
from retrofit.policies.std_bounds import TANH_GAUSSIAN_LOG_STD
from retrofit.scaling import safe_scale


def causal_mask(n_tokens: int, device: torch.device | None = None) -> torch.Tensor:
    """``(n, n)`` bool, True where token ``i`` may attend to token ``j`` (``j ≤ i``)."""
    return torch.ones(n_tokens, n_tokens, dtype=torch.bool, device=device).tril()


class _Block(nn.Module):
    """Pre-norm transformer block: causal self-attention then a GELU MLP, each residual."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.dropout = dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, L, D)``; ``mask`` ``(L, L)`` bool (True = may attend)."""
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(d, dim=-1)
        shape = (b, n, self.heads, d // self.heads)
        q, k, v = (t.reshape(shape).transpose(1, 2) for t in (q, k, v))
        drop = self.dropout if self.training else 0.0
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        x = x + F.dropout(self.proj(attn.transpose(1, 2).reshape(b, n, d)), drop, self.training)
        return x + F.dropout(self.mlp(self.norm2(x)), drop, self.training)


@register_policy_class
class DecisionTransformer(nn.Module):
    """CDT's network: ``forward(rtg, ctg, obs, act, timesteps)`` → action distribution parameters
    and cost-class log-probabilities for every step of the window.

    Args:
        observation_dim, action_dim: sizes of the spaces.
        action_low, action_high: the action box; actions are ``centre + half·tanh(u)``.
        max_episode_steps: the longest episode; steps beyond it share the last step embedding.
        embedding_dim, layers, heads, context, dropout: CDT's defaults are 128, 3, 8, 10, 0.1.
        step_value_hidden: widths of an attached ``StepValueModel`` (Safe-RLHF (CDT)); None if
            the to-go sums count the environment's rewards and costs.
    """

    def __init__(
        self,
        observation_dim: int,
        action_dim: int,
        action_low: np.ndarray | float,
        action_high: np.ndarray | float,
        max_episode_steps: int,
        embedding_dim: int = 128,
        layers: int = 3,
        heads: int = 8,
        context: int = 10,
        dropout: float = 0.1,
        step_value_hidden: tuple[int, ...] | list[int] | None = None,
    ) -> None:
        super().__init__()
        if embedding_dim % heads:
            raise ValueError(f"embedding_dim={embedding_dim} must be a multiple of heads={heads}.")
        self.observation_dim, self.action_dim = int(observation_dim), int(action_dim)
        self.context = int(context)
        self.max_episode_steps = int(max_episode_steps)
        self.embedding_dim = int(embedding_dim)
        self.layers, self.heads, self.dropout = int(layers), int(heads), float(dropout)
        low = torch.as_tensor(np.broadcast_to(action_low, (action_dim,)).copy(),
                              dtype=torch.float32)
        high = torch.as_tensor(np.broadcast_to(action_high, (action_dim,)).copy(),
                               dtype=torch.float32)
        self.register_buffer("action_low", low)
        self.register_buffer("action_high", high)
        self.register_buffer("obs_mean", torch.zeros(observation_dim))
        self.register_buffer("obs_std", torch.ones(observation_dim))
        # evaluation conditioning (set by the trainer; see CDTAdapter)
        self.register_buffer("target_return", torch.tensor(0.0))
        self.register_buffer("target_cost", torch.tensor(0.0))
        self.register_buffer("reward_scale", torch.tensor(1.0))
        self.register_buffer("cost_scale", torch.tensor(1.0))

        self.step_embedding = nn.Embedding(self.max_episode_steps, embedding_dim)
        self.return_embedding = nn.Linear(1, embedding_dim)
        self.cost_embedding = nn.Linear(1, embedding_dim)
        self.state_embedding = nn.Linear(observation_dim, embedding_dim)
        self.action_embedding = nn.Linear(action_dim, embedding_dim)
        self.input_norm = nn.LayerNorm(embedding_dim)
        self.input_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(_Block(embedding_dim, heads, dropout) for _ in range(layers))
        self.output_norm = nn.LayerNorm(embedding_dim)
        self.action_mean = nn.Linear(embedding_dim, action_dim)
        self.action_log_std = nn.Linear(embedding_dim, action_dim)
        self.cost_head = nn.Linear(embedding_dim, 2)
        self.apply(self._init_weights)
        # Safe-RLHF (CDT): the learned rewards/costs the to-go sums are counted in (None: the
        # environment's own)
        self.step_values: StepValueModel | None = (
            None if step_value_hidden is None
            else StepValueModel(observation_dim, action_dim, tuple(step_value_hidden))
        )

    def config(self) -> dict:
        """JSON-able constructor arguments (for saving next to the state dict)."""
        values = self.step_values
        return {
            "observation_dim": self.observation_dim, "action_dim": self.action_dim,
            "action_low": self.action_low.tolist(), "action_high": self.action_high.tolist(),
            "max_episode_steps": self.max_episode_steps, "embedding_dim": self.embedding_dim,
            "layers": self.layers, "heads": self.heads, "context": self.context,
            "dropout": self.dropout,
            "step_value_hidden": None if values is None else list(values.hidden_sizes),
        }

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def set_observation_normalizer(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Standardise observations with the dataset's mean and std (zero std counts as 1)."""
        std = safe_scale(std)
        self.obs_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.obs_std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def set_conditioning(self, target_return: float, target_cost: float, reward_scale: float,
                         cost_scale: float) -> None:
        """What evaluation conditions on: the episode's target return and cost (raw units) and
        the scales applied to returns- and costs-to-go before they are embedded."""
        for name, value in (("target_return", target_return), ("target_cost", target_cost),
                            ("reward_scale", reward_scale), ("cost_scale", cost_scale)):
            getattr(self, name).fill_(float(value))

    def forward(
        self,
        rtg: torch.Tensor,
        ctg: torch.Tensor,
        obs: torch.Tensor,
        act: torch.Tensor,
        timesteps: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``rtg``, ``ctg`` ``(B, K)`` (already scaled), ``obs`` ``(B, K, observation_dim)``,
        ``act`` ``(B, K, action_dim)``, ``timesteps`` ``(B, K)`` long.

        Returns ``(mean, log_std, cost_log_probs)``: the pre-tanh Gaussian of ``a_t`` read at
        ``s_t``'s token ``(B, K, action_dim)`` twice, and ``log p(c_t > 0 | …, a_t)`` classes
        ``(B, K, 2)`` read at ``a_t``'s token. Causal: step ``t``'s outputs ignore steps ``> t``
        and ``a_t`` does not enter its own action prediction.
        """
        b, k = obs.shape[:2]
        step = self.step_embedding(timesteps.clamp(0, self.max_episode_steps - 1))
        obs = (obs - self.obs_mean) / self.obs_std
        centre = (self.action_high + self.action_low) / 2
        half = (self.action_high - self.action_low) / 2
        tokens = torch.stack([
            self.return_embedding(rtg.unsqueeze(-1)) + step,
            self.cost_embedding(ctg.unsqueeze(-1)) + step,
            self.state_embedding(obs) + step,
            self.action_embedding((act - centre) / half) + step,
        ], dim=2).reshape(b, 4 * k, self.embedding_dim)  # (R_0, C_0, s_0, a_0, R_1, ...)
        x = self.input_dropout(self.input_norm(tokens))
        mask = causal_mask(4 * k, x.device)
        for block in self.blocks:
            x = block(x, mask)
        x = self.output_norm(x).reshape(b, k, 4, self.embedding_dim)
        state_out, action_out = x[:, :, 2], x[:, :, 3]
        mean = self.action_mean(state_out)
        log_std = TANH_GAUSSIAN_LOG_STD.clamp(self.action_log_std(state_out))
        cost_log_probs = F.log_softmax(self.cost_head(action_out), dim=-1)
        return mean, log_std, cost_log_probs

    # ------------------------------------------------------------------ the squashed Gaussian
    def squash(self, u: torch.Tensor) -> torch.Tensor:
        """``centre + half·tanh(u)``: a pre-tanh value as an action in the box."""
        centre = (self.action_high + self.action_low) / 2
        half = (self.action_high - self.action_low) / 2
        return centre + half * torch.tanh(u)

    def log_likelihood(self, mean: torch.Tensor, log_std: torch.Tensor,
                       act: torch.Tensor) -> torch.Tensor:
        """``log π(a|·)`` of box actions under the tanh-squashed Gaussian, summed over action
        dimensions (the inverse tanh is clipped at ``1 − ATANH_EPS``: bound actions stay finite)."""
        centre = (self.action_high + self.action_low) / 2
        half = (self.action_high - self.action_low) / 2
        y = ((act - centre) / half).clamp(-1 + ATANH_EPS, 1 - ATANH_EPS)
        u = torch.atanh(y)
        gauss = (-0.5 * ((u - mean) / log_std.exp()).square() - log_std
                 - 0.5 * math.log(2 * math.pi))
        jacobian = torch.log(half) + torch.log1p(ATANH_EPS - y.square())
        return (gauss - jacobian).sum(-1)

    @staticmethod
    def entropy(log_std: torch.Tensor) -> torch.Tensor:
        """Entropy of the pre-tanh Gaussian, summed over dimensions (the squashed one has no
        closed form; CDT's regulariser uses this one)."""
        return (log_std + 0.5 * math.log(2 * math.pi * math.e)).sum(-1)


def mlp(in_dim: int, hidden_sizes: tuple[int, ...], out_dim: int = 1) -> nn.Sequential:
    """A ReLU MLP ``in_dim → hidden_sizes → out_dim``."""
    layers: list[nn.Module] = []
    for width in hidden_sizes:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class StepValueModel(nn.Module):
    """Learned per-step reward and cost ``(r̂(s, a), ĉ(s, a))`` (Safe-RLHF's reward and cost
    models), with the affine maps the relabelled data used: ``(r̂ − r_shift) / r_scale`` and
    ``ĉ / c_scale`` (the cost keeps its sign: ``ĉ > 0`` reads unsafe)."""

    def __init__(self, observation_dim: int, action_dim: int,
                 hidden_sizes: tuple[int, ...]) -> None:
        super().__init__()
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.reward = mlp(observation_dim + action_dim, hidden_sizes)
        self.cost = mlp(observation_dim + action_dim, hidden_sizes)
        self.register_buffer("obs_mean", torch.zeros(observation_dim))
        self.register_buffer("obs_std", torch.ones(observation_dim))
        self.register_buffer("reward_shift", torch.tensor(0.0))
        self.register_buffer("reward_scale", torch.tensor(1.0))
        self.register_buffer("cost_scale", torch.tensor(1.0))

    def inputs(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Standardised observations next to the actions."""
        return torch.cat([(obs - self.obs_mean) / self.obs_std, act], dim=-1)

    def raw(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(r̂, ĉ)`` before the relabelling's maps, shape ``obs.shape[:-1]``."""
        x = self.inputs(obs, act)
        return self.reward(x).squeeze(-1), self.cost(x).squeeze(-1)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The relabelled ``(reward, cost)`` of each step."""
        reward, cost = self.raw(obs, act)
        return (reward - self.reward_shift) / self.reward_scale, cost / self.cost_scale


def attach_step_values(policy: DecisionTransformer, values: StepValueModel) -> None:
    """Make ``policy`` update its return- and cost-to-go with ``values``' relabelled rewards and
    costs of the steps it takes, instead of the environment's (Safe-RLHF (CDT): the model was
    trained on the learned units and the environment's are different)."""
    policy.step_values = values
