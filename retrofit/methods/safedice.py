"""SafeDICE trainer (Jang et al., NeurIPS 2023): offline safe imitation from a union of
unlabelled trajectories and a small labelled set of non-preferred ones.

Data: ``fit(unlabeled, nonpreferred)``. The union is ``D = unlabeled ∪ nonpreferred`` (SafeDICE's
mixture; with PREFINE's split, ``unlabeled`` is D_p and ``nonpreferred`` is D_np, so SafeDICE
sees exactly the trajectories PREFINE sees, with the non-preferred ones labelled).

1. Discriminator ``c(s,a)``: labelled non-preferred pairs are "real", union pairs "fake"; GAN
   loss + gradient penalty (weight 10) at interpolations real↔union and union↔shuffled union;
   pretrained for ``discriminator_steps`` and frozen.
2. ``α = min_D(1/σ(c) - 1) - 1e-5``; reward ``r = log[(1-(1+α)σ(c)) / ((1-α)(1-σ(c)))]`` for
   every union transition, standardised over the union. (The discriminator is frozen, so we
   compute the rewards once instead of per batch: the same numbers, fewer forward passes.)
3. State critic ``ν``: ``e = r + γ ν(s') - ν(s)``, ``L_ν = logsumexp_batch(e) + (1-γ) E ν(s0) +
   1e-6 ||∇_s ν||²`` (penalty at union states and at interpolations with the labelled states).
4. Actor: weighted BC on the union, weights ``exp(e-1)`` over their batch mean (constants),
   tanh-Gaussian actor.
Inputs: observations are standardised with the union's statistics and actions scaled to
[-1, 1] before the discriminator and ν (our choice; the paper feeds raw inputs).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from retrofit.adapters import wrap
from retrofit.adapters.base import PolicyAdapter
from retrofit.errors import ConfigError, DataError
from retrofit.losses import safedice as L
from retrofit.methods.registry import register_method
from retrofit.policies.gaussian import TanhGaussianPolicy, mlp
from retrofit.scaling import safe_scale
from retrofit.training.config import TrainerConfig
from retrofit.training.samplers import Transitions
from retrofit.training.trainer import BaseTrainer, Stage


@dataclass(frozen=True)
class SafeDICEConfig(TrainerConfig):
    """SafeDICE hyper-parameters; defaults from the paper's public configuration
    (config/safedice_config.py: batch 512, hidden 256, lrs, γ, grad_reg_coeffs (10, 1e-6),
    1M iterations, 100k discriminator pretraining steps).

    batch_size: union transitions per step (512; as many labelled ones for the penalties).
    steps: ν/actor updates (1M in the paper).
    discriminator_steps: discriminator pretraining updates (None: ``steps / 10``, the paper's
        100k for 1M).
    hidden_sizes: widths of the discriminator, ν and actor ([256, 256]).
    discriminator_learning_rate / critic_learning_rate / actor_learning_rate: Adam learning
        rates (1e-4 / 1e-4 / 1e-5).
    gamma: discount (0.99). discriminator_gp / nu_gp: penalty weights (10 / 1e-6).
    init_from_policy: start the actor from the policy passed in (False: a fresh tanh-Gaussian
        actor, as in the paper).
    """

    batch_size: int = 512
    steps: int = 1_000_000
    discriminator_steps: int | None = None
    hidden_sizes: tuple[int, ...] = (256, 256)
    discriminator_learning_rate: float = 1e-4
    critic_learning_rate: float = 1e-4
    actor_learning_rate: float = 1e-5
    gamma: float = 0.99
    discriminator_gp: float = 10.0
    nu_gp: float = 1e-6
    init_from_policy: bool = False

    def check(self) -> None:
        """Raise ``ConfigError`` on out-of-range values."""
        self.require_positive("discriminator_learning_rate", "critic_learning_rate",
                              "actor_learning_rate")
        if self.discriminator_steps is not None and self.discriminator_steps < 1:
            raise ConfigError(f"discriminator_steps={self.discriminator_steps} must be >= 1.")
        if not 0 < self.gamma < 1:
            raise ConfigError(f"gamma={self.gamma} must be in (0, 1).")

    @property
    def n_discriminator_steps(self) -> int:
        """The discriminator pretraining length actually used."""
        if self.discriminator_steps is not None:
            return self.discriminator_steps
        return max(1, round(self.steps / 10))


def _head(in_dim: int, hidden: tuple[int, ...]) -> nn.Sequential:
    """MLP to one output without a last-layer bias (the public code's ``use_last_layer_bias``)."""
    return nn.Sequential(mlp(in_dim, hidden), nn.Linear(hidden[-1], 1, bias=False))


class SafeDICETrainer(BaseTrainer):
    """Discriminator pretraining, then ν and weighted-BC actor updates on ``fit(D_U, D_N)``."""

    config_class = SafeDICEConfig
    data_kind = "pairs"
    config: SafeDICEConfig
    derived_state = ("union_x", "labeled_x", "union_s", "union_next_s", "labeled_s",
                     "labeled_next_s", "initial_s", "_union_obs", "_union_act")

    def setup(self, policy: PolicyAdapter) -> None:
        """The actor (fresh, or a copy of ``policy``), discriminator, ν network, optimisers."""
        config = self.config
        observation_dim, action_dim = int(policy.observation_dim), int(policy.action_dim)
        self.action_low = np.asarray(policy.action_low, dtype=np.float32)
        self.action_high = np.asarray(policy.action_high, dtype=np.float32)
        if config.init_from_policy:
            self.policy: PolicyAdapter = policy.trainable_copy().to(self.device)
        else:
            self.policy = wrap(TanhGaussianPolicy(
                observation_dim, action_dim, self.action_low, self.action_high, config.hidden_sizes
            ).to(self.device))
        self.discriminator = _head(observation_dim + action_dim,
                                   config.hidden_sizes).to(self.device)
        self.nu = _head(observation_dim, config.hidden_sizes).to(self.device)
        self.discriminator_opt = self.adam(list(self.discriminator.parameters()),
                                           config.discriminator_learning_rate)
        self.nu_opt = self.adam(list(self.nu.parameters()), config.critic_learning_rate)
        self.actor_opt = self.adam(self.trainable_parameters(), config.actor_learning_rate)
        self.alpha = float("nan")

    # ------------------------------------------------------------------ inputs
    def _prepare(self, union: Transitions, labeled: Transitions) -> None:
        mean = torch.as_tensor(union.obs_mean, device=self.device)
        std = torch.as_tensor(safe_scale(union.obs_std),
                              device=self.device, dtype=torch.float32)
        low = torch.as_tensor(self.action_low, device=self.device)
        high = torch.as_tensor(self.action_high, device=self.device)

        def states(x: torch.Tensor) -> torch.Tensor:
            return (x - mean) / std

        def pairs(obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
            return torch.cat([states(obs), (2 * act - high - low) / (high - low)], -1)

        self.union_x = pairs(union.obs, union.act)
        self.labeled_x = pairs(labeled.obs, labeled.act)
        self.union_s, self.union_next_s = states(union.obs), states(union.next_obs)
        self.labeled_s, self.labeled_next_s = states(labeled.obs), states(labeled.next_obs)
        self.initial_s = states(union.initial_obs)
        if not self.config.init_from_policy:
            self.policy.module.set_observation_normalizer(union.obs_mean, union.obs_std)

    @staticmethod
    def _uniform(n: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
        return torch.rand((n, 1), generator=gen, device=device)

    # ------------------------------------------------------------------ stage 1
    def discriminator_update(self, real: torch.Tensor, fake: torch.Tensor,
                             gen: torch.Generator) -> dict[str, torch.Tensor]:
        """One GAN + gradient-penalty step (real: labelled non-preferred, fake: union)."""
        u = self._uniform(real.shape[0], gen, real.device)
        shuffled = fake[torch.randperm(fake.shape[0], generator=gen, device=fake.device)]
        mixed = torch.cat([u * real + (1 - u) * fake, u * shuffled + (1 - u) * fake])
        mixed.requires_grad_(True)
        logits = self.discriminator(torch.cat([real, fake, mixed])).squeeze(-1)
        b = real.shape[0]
        grads = torch.autograd.grad(logits[2 * b:].sum(), mixed, create_graph=True)[0]
        loss, metrics = L.discriminator_loss(logits[:b], logits[b:2 * b], grads,
                                             self.config.discriminator_gp)
        metrics["loss"] = loss.detach()
        self.discriminator_opt.zero_grad(set_to_none=True)
        loss.backward(inputs=list(self.discriminator.parameters()))
        self.discriminator_opt.step()
        return metrics

    @torch.no_grad()
    def _union_rewards(self, chunk: int = 65_536) -> torch.Tensor:
        logits = torch.cat([self.discriminator(x).squeeze(-1)
                            for x in torch.split(self.union_x, chunk)])
        self.alpha = L.mixture_alpha(logits)
        rewards = L.reward_from_logits(logits, self.alpha)
        std = rewards.std(unbiased=False).clamp(min=1e-8)
        return (rewards - rewards.mean()) / std

    # ------------------------------------------------------------------ stage 2
    def update(self, idx: torch.Tensor, lab: torch.Tensor, init: torch.Tensor,
               gen: torch.Generator) -> dict[str, torch.Tensor]:
        """One ν step and one weighted-BC actor step on union rows ``idx``."""
        cfg = self.config
        b = idx.shape[0]
        s, s_next = self.union_s[idx], self.union_next_s[idx]
        u = self._uniform(b, gen, s.device)
        mix = torch.cat([s, u * self.labeled_s[lab] + (1 - u) * s,
                         u * self.labeled_next_s[lab] + (1 - u) * s_next])
        mix.requires_grad_(True)
        nu_all = self.nu(torch.cat([mix, s_next, self.initial_s[init]])).squeeze(-1)
        grads = torch.autograd.grad(nu_all[:3 * b].sum(), mix, create_graph=True)[0]
        nu_s, nu_next, nu_init = nu_all[:b], nu_all[3 * b:4 * b], nu_all[4 * b:]
        adv = L.advantage(self.union_rewards[idx], nu_s, nu_next, cfg.gamma)
        nu_loss, metrics = L.nu_loss(adv, nu_init, grads, cfg.gamma, cfg.nu_gp)
        self.nu_opt.zero_grad(set_to_none=True)
        nu_loss.backward(inputs=list(self.nu.parameters()))
        self.nu_opt.step()

        weights = L.dice_weights(adv)
        log_probs = self.policy.log_prob(self._union_obs[idx], self._union_act[idx])
        actor_loss, actor_metrics = L.weighted_bc_loss(weights, log_probs)
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        metrics.update(actor_metrics)
        metrics["loss"] = actor_loss.detach()
        return metrics

    # ------------------------------------------------------------------ training
    def stages(self, unlabeled: Any = None, nonpreferred: Any = None, *,
               steps: int) -> list[Stage]:
        """Discriminator pretraining (no callbacks: the actor does not change), then ν and the
        actor; ``steps_done`` counts both stages."""
        if unlabeled is None or nonpreferred is None:
            raise DataError(
                "SafeDICE needs the union data and a labelled non-preferred set: call "
                "fit(unlabeled, nonpreferred), e.g. with dataset.split_preferences(...)."
            )
        self.union = Transitions(unlabeled, nonpreferred, device=self.device, seed=self.seed,
                                 name="(unlabeled, nonpreferred)")
        self.labeled = Transitions(nonpreferred, device=self.device, seed=self.seed + 1,
                                   name="nonpreferred")
        union, labeled = self.union, self.labeled
        self._union_obs, self._union_act = union.obs, union.act
        self._prepare(union, labeled)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(self.seed + 2)
        b = self.config.batch_size

        def start_discriminator() -> None:
            self.discriminator.requires_grad_(True)

        def disc_update() -> dict[str, torch.Tensor]:
            return self.discriminator_update(self.labeled_x[labeled.index(b)],
                                             self.union_x[union.index(b)], self.generator)

        def start_main() -> None:
            self.discriminator.requires_grad_(False)
            self.union_rewards = self._union_rewards()

        def main_update() -> dict[str, torch.Tensor]:
            init = union.index(b, n=len(self.initial_s))
            return self.update(union.index(b), labeled.index(b), init, self.generator)

        return [
            Stage("safedice-disc", self.config.n_discriminator_steps, disc_update,
                  prepare=start_discriminator, callbacks=False),
            Stage("safedice", steps, main_update, prepare=start_main),
        ]

    def hyperparameters(self) -> dict[str, Any]:
        """The config plus the discriminator pretraining length used, JSON-able."""
        return {**asdict(self.config), "n_discriminator_steps": self.config.n_discriminator_steps}


register_method("safedice", SafeDICETrainer, SafeDICEConfig,
                "SafeDICE: union data + labelled non-preferred set (Jang et al. 2023)")
