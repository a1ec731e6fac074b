"""CPQ trainer (Constraints Penalized Q-learning, Xu et al. AAAI 2022; OSRL's implementation).

Per step, on one minibatch of transitions:
1. VAE update (reconstruction + β_KL·KL); the VAE's KL marks out-of-distribution actions.
2. Reward critics (ensemble, min) regress onto ``r + γ(1-d) 1[Qc' ≤ q_thres] Q'`` (Eq. 8 of the
   paper: the constraints-penalised Bellman operator).
3. Cost critics regress onto ``c + γ(1-d) Qc'`` minus ``α (mean qc_ood - qc_thres)``, where
   ``qc_ood`` is the cost value of 10 policy-sampled actions per state whose VAE-KL is above the
   batch's 75th percentile; one dual step on ``log α`` (clamped to ±5).
4. The squashed-Gaussian actor maximises ``1[Qc(s,π(s)) ≤ q_thres] Q(s,π(s))``.
5. Polyak averaging of both target critics.

Differences from OSRL, on purpose: ``qc_ood`` is scored by the online cost critic so that the
penalty has a gradient (OSRL scores it with the target network inside ``no_grad``, which makes the
penalty a constant); the cost target is masked by ``(1-d)`` like the reward target; observations
are standardised inside every network. The actor is trained from scratch, as in the paper.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from retrofit.adapters import wrap
from retrofit.adapters.base import PolicyAdapter
from retrofit.errors import ConfigError
from retrofit.losses import cpq as L
from retrofit.methods.registry import register_method
from retrofit.policies.gaussian import TanhGaussianPolicy, mlp
from retrofit.policies.std_bounds import VAE_ENCODER_LOG_STD
from retrofit.scaling import safe_scale
from retrofit.thresholds import check_cost_threshold
from retrofit.training.config import TrainerConfig
from retrofit.training.samplers import Transitions
from retrofit.training.trainer import BaseTrainer, Stage

LOG_ALPHA_BOUND = 5.0


@dataclass(frozen=True)
class CPQConfig(TrainerConfig):
    """CPQ hyper-parameters; defaults from OSRL's ``CPQTrainConfig`` (Liu et al. 2023) and the
    OSRL defaults.

    cost_threshold: the episode cost threshold κ (required; the paper's limit L).
    episode_len: T in ``q_thres`` (None: the task's time limit, else the longest episode).
    gamma: discount (0.99). tau: Polyak coefficient (0.005).
    actor_learning_rate / critic_learning_rate / alpha_learning_rate / vae_learning_rate: Adam
        learning rates (1e-4 / 1e-3 / 1e-4 / 1e-3).
    batch_size: transitions per step (512). steps: updates (100k).
    hidden_sizes: actor and critic widths ([256, 256]). vae_hidden: VAE width (400, two layers).
    kl_weight: β_KL of the VAE (0.5). num_q / num_qc: ensemble sizes (2 / 2; minimum taken).
    sample_action_num: actions sampled per state for the OOD penalty (10).
    ood_quantile: KL quantile above which a sampled action counts as OOD (0.75).
    qc_scalar: ``qc_thres = qc_scalar · q_thres`` (1.5). reward_scale: reward multiplier (0.1).
    """

    cost_threshold: float | None = None
    episode_len: int | None = None
    gamma: float = 0.99
    tau: float = 0.005
    actor_learning_rate: float = 1e-4
    critic_learning_rate: float = 1e-3
    alpha_learning_rate: float = 1e-4
    vae_learning_rate: float = 1e-3
    batch_size: int = 512
    steps: int = 100_000
    hidden_sizes: tuple[int, ...] = (256, 256)
    vae_hidden: int = 400
    kl_weight: float = 0.5
    num_q: int = 2
    num_qc: int = 2
    sample_action_num: int = 10
    ood_quantile: float = 0.75
    qc_scalar: float = 1.5
    reward_scale: float = 0.1

    def check(self) -> None:
        """Raise ``ConfigError`` on out-of-range values."""
        if self.cost_threshold is not None:
            check_cost_threshold(self.cost_threshold)
        if not 0 < self.gamma < 1 or not 0 < self.tau <= 1:
            raise ConfigError(f"gamma={self.gamma} must be in (0, 1) and tau={self.tau} in (0, 1].")
        self.require_positive("actor_learning_rate", "critic_learning_rate",
                              "alpha_learning_rate", "vae_learning_rate")
        if self.num_q < 1 or self.num_qc < 1:
            raise ConfigError("num_q and num_qc must be >= 1.")
        if not 0 < self.ood_quantile < 1 or self.sample_action_num < 1:
            raise ConfigError(
                f"ood_quantile={self.ood_quantile} must be in (0, 1) and sample_action_num="
                f"{self.sample_action_num} >= 1."
            )

    def check_complete(self) -> None:
        """CPQ needs κ."""
        if self.cost_threshold is None:
            raise ConfigError(
                "cost_threshold=None: CPQ needs the episode cost threshold κ >= 0, e.g. "
                "Retrofitter(policy, method='cpq', cost_threshold=20)."
            )


class QEnsemble(nn.Module):
    """``E`` independent MLP critics ``Q_e(s, a)``; ``forward`` returns ``(E, B)``."""

    def __init__(self, observation_dim: int, action_dim: int, hidden_sizes: tuple[int, ...], n: int,
                 obs_mean: np.ndarray, obs_std: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("obs_mean", torch.as_tensor(obs_mean, dtype=torch.float32))
        self.register_buffer("obs_std", torch.as_tensor(safe_scale(obs_std),
                                                        dtype=torch.float32))
        self.nets = nn.ModuleList(
            nn.Sequential(mlp(observation_dim + action_dim, hidden_sizes),
                          nn.Linear(hidden_sizes[-1], 1))
            for _ in range(n)
        )

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """All members' values, ``(E, B)``."""
        x = torch.cat([(obs - self.obs_mean) / self.obs_std, act], -1)
        return torch.stack([net(x).squeeze(-1) for net in self.nets])


class ActionVAE(nn.Module):
    """BCQ-style conditional VAE over actions (OSRL ``VAE``): two hidden layers of ``hidden``."""

    def __init__(self, observation_dim: int, action_dim: int, hidden: int, low: np.ndarray,
                 high: np.ndarray, obs_mean: np.ndarray, obs_std: np.ndarray) -> None:
        super().__init__()
        self.latent_dim = 2 * action_dim
        self.register_buffer("obs_mean", torch.as_tensor(obs_mean, dtype=torch.float32))
        self.register_buffer("obs_std", torch.as_tensor(safe_scale(obs_std),
                                                        dtype=torch.float32))
        self.register_buffer("centre", torch.as_tensor((high + low) / 2, dtype=torch.float32))
        self.register_buffer("half_range", torch.as_tensor((high - low) / 2, dtype=torch.float32))
        self.encoder = mlp(observation_dim + action_dim, (hidden, hidden))
        self.mean = nn.Linear(hidden, self.latent_dim)
        self.log_std = nn.Linear(hidden, self.latent_dim)
        self.decoder = nn.Sequential(mlp(observation_dim + self.latent_dim, (hidden, hidden)),
                                     nn.Linear(hidden, action_dim))

    def encode(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent mean and std of ``q(z|s,a)`` (log σ clamped to BCQ's ``VAE_ENCODER_LOG_STD``)."""
        h = self.encoder(torch.cat([(obs - self.obs_mean) / self.obs_std, act], -1))
        return self.mean(h), VAE_ENCODER_LOG_STD.clamp(self.log_std(h)).exp()

    def decode(self, obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Action reconstructed from ``(s, z)``, squashed into the action box."""
        out = self.decoder(torch.cat([(obs - self.obs_mean) / self.obs_std, z], -1))
        return self.centre + self.half_range * torch.tanh(out)

    def forward(self, obs: torch.Tensor, act: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(reconstruction, mean, std)`` with a reparameterised latent sample."""
        mean, std = self.encode(obs, act)
        z = mean + std * torch.randn_like(std)
        return self.decode(obs, z), mean, std


def _episode_len(datasets: tuple[Any, ...]) -> int:
    task = getattr(datasets[0], "task", None)
    if task:
        from retrofit.tasks import task_info

        return task_info(task).max_episode_steps
    return int(max(int(np.diff(d.episode_starts).max()) for d in datasets))


class CPQTrainer(BaseTrainer):
    """Trains a fresh squashed-Gaussian actor with CPQ on ``fit(*datasets)``'s transitions."""

    config_class = CPQConfig
    data_kind = "transitions"
    config: CPQConfig

    def setup(self, policy: PolicyAdapter) -> None:
        """A fresh squashed-Gaussian actor with ``policy``'s observation size and action box;
        critics and the VAE are built when the data is seen (their normalisers need it)."""
        self._shapes = (int(policy.observation_dim), int(policy.action_dim),
                        np.asarray(policy.action_low, dtype=np.float32),
                        np.asarray(policy.action_high, dtype=np.float32))
        observation_dim, action_dim, low, high = self._shapes
        self.policy = wrap(TanhGaussianPolicy(observation_dim, action_dim, low, high,
                                              self.config.hidden_sizes).to(self.device))
        self.q_thres = self.qc_thres = float("nan")

    # ------------------------------------------------------------------ set-up
    def _build(self, data: Transitions, episode_len: int) -> None:
        cfg, dev = self.config, self.device
        observation_dim, action_dim, low, high = self._shapes
        assert cfg.cost_threshold is not None
        self.q_thres, self.qc_thres = L.cost_critic_thresholds(
            cfg.cost_threshold, cfg.gamma, episode_len, cfg.qc_scalar)
        actor = self.policy.module
        actor.set_observation_normalizer(data.obs_mean, data.obs_std)
        stats = (data.obs_mean, data.obs_std)
        self.critic = QEnsemble(observation_dim, action_dim, cfg.hidden_sizes, cfg.num_q,
                                *stats).to(dev)
        self.cost_critic = QEnsemble(observation_dim, action_dim, cfg.hidden_sizes, cfg.num_qc,
                                     *stats).to(dev)
        self.critic_target = QEnsemble(observation_dim, action_dim, cfg.hidden_sizes, cfg.num_q,
                                       *stats).to(dev)
        self.cost_critic_target = QEnsemble(observation_dim, action_dim, cfg.hidden_sizes,
                                            cfg.num_qc, *stats).to(dev)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.cost_critic_target.load_state_dict(self.cost_critic.state_dict())
        self.critic_target.requires_grad_(False)
        self.cost_critic_target.requires_grad_(False)
        self.vae = ActionVAE(observation_dim, action_dim, cfg.vae_hidden, low, high, *stats).to(dev)
        self.log_alpha = torch.zeros((), device=dev, requires_grad=True)
        self.actor_opt = self.adam(list(actor.parameters()), cfg.actor_learning_rate)
        self.critic_opt = self.adam(list(self.critic.parameters()), cfg.critic_learning_rate)
        self.cost_critic_opt = self.adam(list(self.cost_critic.parameters()),
                                         cfg.critic_learning_rate)
        self.vae_opt = self.adam(list(self.vae.parameters()), cfg.vae_learning_rate)
        self.alpha_opt = self.adam([self.log_alpha], cfg.alpha_learning_rate)

    def _sample(self, obs: torch.Tensor, reparameterise: bool) -> torch.Tensor:
        """``a ~ π(·|s)``: reparameterised (for the actor loss) or detached."""
        module = self.policy.module
        mean, log_std = module(obs)
        u = mean + torch.randn_like(mean) * log_std.exp()
        act = (module.action_high + module.action_low) / 2 + (
            module.action_high - module.action_low) / 2 * torch.tanh(u)
        return act if reparameterise else act.detach()

    @staticmethod
    def _step(opt: torch.optim.Optimizer, loss: torch.Tensor, params: list[torch.Tensor]) -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward(inputs=params)
        opt.step()

    # ------------------------------------------------------------------ one update
    def update(self, obs: torch.Tensor, act: torch.Tensor, rewards: torch.Tensor,
               costs: torch.Tensor, next_obs: torch.Tensor, dones: torch.Tensor
               ) -> dict[str, torch.Tensor]:
        """One CPQ step (VAE, reward critic, cost critic + dual, actor, Polyak)."""
        cfg = self.config
        # 1. VAE
        recon, mean, std = self.vae(obs, act)
        vae_loss, metrics = L.vae_loss(recon, act, mean, std, cfg.kl_weight)
        self._step(self.vae_opt, vae_loss, list(self.vae.parameters()))

        # 2. reward critic on the constraints-penalised target
        with torch.no_grad():
            next_act = self._sample(next_obs, reparameterise=False)
            q_next = self.critic_target(next_obs, next_act).min(0).values
            qc_next = self.cost_critic_target(next_obs, next_act).min(0).values
            q_target = L.reward_critic_target(cfg.reward_scale * rewards, dones, q_next, qc_next,
                                              self.q_thres, cfg.gamma)
            qc_target = L.cost_critic_target(costs, dones, qc_next, cfg.gamma)
        critic_loss = L.ensemble_mse(self.critic(obs, act), q_target)
        self._step(self.critic_opt, critic_loss, list(self.critic.parameters()))
        metrics["loss/critic"] = critic_loss.detach()

        # 3. cost critic with the OOD penalty, then the dual step on log α
        n, b = cfg.sample_action_num, obs.shape[0]
        obs_rep = obs.unsqueeze(0).expand(n, *obs.shape).reshape(n * b, -1)
        with torch.no_grad():
            sampled = self._sample(obs_rep, reparameterise=False)
            kl = L.vae_kl(*self.vae.encode(obs_rep, sampled)).reshape(n, b)
            rows = L.ood_mask(kl, cfg.ood_quantile).reshape(-1).nonzero().squeeze(1)
        # only the out-of-distribution actions carry value and gradient: score just those
        qc_selected = self.cost_critic(obs_rep[rows], sampled[rows]).min(0).values
        qc_ood = L.ood_cost_mean(qc_selected, n * b)
        cost_loss, cost_metrics = L.cost_critic_loss(
            self.cost_critic(obs, act), qc_target, qc_ood, self.log_alpha.exp(), self.qc_thres
        )
        self._step(self.cost_critic_opt, cost_loss, list(self.cost_critic.parameters()))
        metrics.update(cost_metrics)
        dual = L.alpha_loss(self.log_alpha, qc_ood, self.qc_thres)
        self._step(self.alpha_opt, dual, [self.log_alpha])
        with torch.no_grad():
            self.log_alpha.clamp_(-LOG_ALPHA_BOUND, LOG_ALPHA_BOUND)
        metrics["alpha"] = self.log_alpha.detach().exp()

        # 4. actor
        pi = self._sample(obs, reparameterise=True)
        q_pi = self.critic(obs, pi).min(0).values
        qc_pi = self.cost_critic(obs, pi).min(0).values
        actor_loss, actor_metrics = L.actor_loss(q_pi, qc_pi, self.q_thres)
        self._step(self.actor_opt, actor_loss, list(self.policy.module.parameters()))
        metrics.update(actor_metrics)

        # 5. Polyak averaging of the target critics
        with torch.no_grad():
            for target, source in ((self.critic_target, self.critic),
                                   (self.cost_critic_target, self.cost_critic)):
                torch._foreach_lerp_(list(target.parameters()), list(source.parameters()),
                                     cfg.tau)
        metrics["loss"] = actor_loss.detach()
        return metrics

    # ------------------------------------------------------------------ training
    def stages(self, *datasets: Any, steps: int) -> list[Stage]:
        """Train on the transitions of ``datasets`` (rewards, costs, dones)."""
        self.data = Transitions(*datasets, device=self.device, seed=self.seed, name="datasets")
        episode_len = self.config.episode_len or _episode_len(datasets)
        self._build(self.data, episode_len)
        batch = self.config.batch_size
        data = self.data

        def update() -> dict[str, torch.Tensor]:
            i = data.index(batch)
            return self.update(data.obs[i], data.act[i], data.rewards[i], data.costs[i],
                               data.next_obs[i], data.dones[i])

        return [Stage("cpq", steps, update)]

    def hyperparameters(self) -> dict[str, Any]:
        """The config plus the derived thresholds, JSON-able."""
        return {**asdict(self.config), "q_thres": self.q_thres, "qc_thres": self.qc_thres}


register_method("cpq", CPQTrainer, CPQConfig,
                "Constraints Penalized Q-learning on rewards and costs (Xu et al. 2022, OSRL)")
