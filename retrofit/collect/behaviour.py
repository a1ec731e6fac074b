"""Behaviour policies for data collection: PPO on the cost-shaped reward ``r - k·s·c``.

DSRL made its datasets with behaviour policies that span the reward–cost trade-off. We do the
same with stable-baselines3 PPO trained on the shaped reward

    r'_t = r_t - k · s · c_t,        s = (R_max - R_min) / T                       (1)

for several penalties ``k``. ``s`` is the task's per-step reward range (dsrl ``infos.py``
constants, ``T`` = episode length), so ``k`` means the same on every task: with ``k = 1`` one
step of cost takes away one step of top reward; ``k = 0`` ignores cost.

A fixed ``k`` gives all-or-nothing policies when cost is charged per step (BallRun's speed limit,
the velocity tasks): breaking the limit either pays on every step or on none. Policies that
*spend* a cost budget ``d`` per episode come from PPO-Lagrangian, which adapts ``k`` after every
PPO rollout from the mean cost return ``J_c`` of the episodes that ended in it:

    k ← max(0, k + η · (J_c − d) / T)                                               (3)

Each run is snapshot at a few points of training (early snapshots earn little reward), and every
snapshot is a :class:`BehaviourPolicy`.

Observations are normalised during training (SB3 ``VecNormalize``); each snapshot keeps the
running mean and variance of its moment, so it acts on raw observations by itself. Snapshots can
be cached on disk as a ``state_dict`` (loaded with ``weights_only=True``) plus a JSON file.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retrofit.atomic import atomic_torch_save, atomic_write_text
from retrofit.config_base import Config
from retrofit.envs import make_env, step_env
from retrofit.errors import ConfigError
from retrofit.tasks import task_info

_CACHE_FORMAT = 1


@dataclass(frozen=True)
class BehaviourConfig(Config):
    """How one behaviour-policy run is trained (PPO hyper-parameters are SB3's defaults).

    Attributes:
        train_steps: environment steps of PPO training per penalty.
        checkpoints: fractions of ``train_steps`` at which a snapshot is taken; ``0.0`` is the
            untrained policy. Early snapshots supply low-reward trajectories.
        n_steps: PPO rollout length per update (SB3 default 2048; lowered automatically to
            ``train_steps`` for tiny runs).
        batch_size: PPO minibatch size (SB3 default 64).
        n_epochs: PPO epochs per update (SB3 default 10).
        learning_rate: Adam step size (SB3 default 3e-4).
        gamma: discount (SB3 default 0.99).
        net_arch: hidden sizes of the policy and value networks (SB3 default 64, 64).
        lagrange_lr: ``η`` of eq. (3), for runs with a cost budget (PPO-Lagrangian).
    """

    train_steps: int = 60_000
    checkpoints: tuple[float, ...] = (0.05, 0.25, 1.0)
    n_steps: int = 2048
    batch_size: int = 64
    n_epochs: int = 10
    learning_rate: float = 3e-4
    gamma: float = 0.99
    net_arch: tuple[int, ...] = (64, 64)
    lagrange_lr: float = 0.5

    def check(self) -> None:
        """``train_steps`` >= 0, checkpoint fractions in [0, 1], PPO batches of >= 2 steps."""
        if self.train_steps < 0:
            raise ConfigError(f"train_steps={self.train_steps} must be >= 0.")
        if not self.checkpoints or any(not 0.0 <= f <= 1.0 for f in self.checkpoints):
            raise ConfigError(
                f"checkpoints={self.checkpoints} must be a non-empty tuple of fractions of "
                "train_steps in [0, 1], e.g. (0.05, 0.25, 1.0)."
            )
        if self.n_steps < 2 or self.batch_size < 2:
            raise ConfigError(
                f"n_steps={self.n_steps} and batch_size={self.batch_size} must both be >= 2."
            )

    def checkpoint_steps(self) -> tuple[int, ...]:
        """Return the sorted, distinct environment-step counts at which snapshots are taken."""
        return tuple(sorted({round(f * self.train_steps) for f in self.checkpoints}))


@dataclass(frozen=True)
class BehaviourPolicy:
    """A PPO snapshot that maps raw observations to (unclipped) mean actions.

    Attributes:
        penalty: the ``k`` of eq. (1) it was trained with (at this step, for budget runs).
        step: environment steps of training behind this snapshot.
        policy: the SB3 ``ActorCriticPolicy`` (eval mode, on CPU).
        obs_mean: running observation mean used for normalisation.
        obs_var: running observation variance used for normalisation.
        clip_obs: normalised observations are clipped to ``[-clip_obs, clip_obs]``.
        budget: the cost budget ``d`` of eq. (3) of a PPO-Lagrangian run, else ``None``.
    """

    penalty: float
    step: int
    policy: Any
    obs_mean: np.ndarray
    obs_var: np.ndarray
    clip_obs: float = 10.0
    budget: float | None = None

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Return the policy's deterministic (mean) action for one raw observation."""
        import torch

        norm = (np.asarray(obs, dtype=np.float64) - self.obs_mean) / np.sqrt(self.obs_var + 1e-8)
        norm = np.clip(norm, -self.clip_obs, self.clip_obs).astype(np.float32)
        with torch.no_grad():
            dist = self.policy.get_distribution(torch.as_tensor(norm).unsqueeze(0))
            mean = dist.distribution.mean
        return mean.squeeze(0).numpy().astype(np.float64)


def cost_scale(task: str) -> float:
    """Return ``s`` of eq. (1): the task's per-step reward range ``(R_max - R_min) / T``."""
    info = task_info(task)
    return (info.max_reward - info.min_reward) / info.max_episode_steps


def make_shaped_env(task: str, penalty: float) -> Any:
    """Return the task's environment with reward ``r - k·s·c`` (eq. 1); ``info`` keeps both parts.

    ``info["reward"]`` holds the environment's own reward and ``info["cost"]`` its cost. The
    wrapper's ``penalty`` attribute is ``k`` and may be changed between steps (eq. 3).
    """
    import gymnasium as gym

    scale = cost_scale(task)

    class CostShapingWrapper(gym.Wrapper):
        """Replace the reward by ``r - k·s·c``; keep the raw reward in ``info["reward"]``."""

        def __init__(self, env: Any) -> None:
            super().__init__(env)
            self.penalty = penalty

        def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
            obs, reward, cost, terminated, truncated, info = step_env(self.env, action)
            info = {**info, "reward": reward, "cost": cost}
            return obs, reward - self.penalty * scale * cost, terminated, truncated, info

    return CostShapingWrapper(make_env(task))


def _cache_key(
    task: str, penalty: float, budget: float | None, seed: int, config: BehaviourConfig
) -> str:
    settings = asdict(config)
    if budget is None:
        del settings["lagrange_lr"]  # unused by fixed-penalty runs
    payload = {"task": task_info(task).env_id, "penalty": penalty, "seed": seed,
               "config": settings, "format": _CACHE_FORMAT}
    if budget is not None:
        payload["budget"] = budget
    text = json.dumps(payload, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _build_policy(env: Any, config: BehaviourConfig) -> Any:
    from stable_baselines3.common.policies import ActorCriticPolicy

    return ActorCriticPolicy(
        env.observation_space,
        env.action_space,
        lr_schedule=lambda _: config.learning_rate,
        net_arch=list(config.net_arch),
    )


def _save_snapshots(folder: Path, snapshots: list[BehaviourPolicy], meta: dict) -> None:
    import torch

    for snap in snapshots:
        state = {
            "policy": snap.policy.state_dict(),
            "obs_mean": torch.as_tensor(snap.obs_mean),
            "obs_var": torch.as_tensor(snap.obs_var),
        }
        atomic_torch_save(folder / f"step{snap.step}.pt", state)
    text = json.dumps(
        {**meta, "steps": [s.step for s in snapshots], "penalties": [s.penalty for s in snapshots]},
        indent=2,
    )
    atomic_write_text(folder / "snapshots.json", text)


def _load_snapshots(
    folder: Path, task: str, budget: float | None, config: BehaviourConfig
) -> list[BehaviourPolicy] | None:
    import torch

    index = folder / "snapshots.json"
    if not index.exists():
        return None
    meta = json.loads(index.read_text())
    penalties = meta.get("penalties", [meta["penalty"]] * len(meta["steps"]))
    env = make_env(task)
    snapshots = []
    for step, penalty in zip(meta["steps"], penalties, strict=True):
        state = torch.load(folder / f"step{step}.pt", weights_only=True)
        policy = _build_policy(env, config)
        policy.load_state_dict(state["policy"])
        policy.set_training_mode(False)
        snapshots.append(
            BehaviourPolicy(penalty, step, policy, state["obs_mean"].numpy(),
                            state["obs_var"].numpy(), budget=budget)
        )
    env.close()
    return snapshots


def train_behaviour_policies(
    task: str,
    penalty: float,
    config: BehaviourConfig,
    *,
    budget: float | None = None,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    on_step: Callable[[int], None] | None = None,
) -> list[BehaviourPolicy]:
    """Train PPO on the shaped reward of eq. (1) and return its snapshots (one per checkpoint).

    Args:
        task: DSRL id or short name (``"BallRun"``).
        penalty: ``k`` of eq. (1), in units of the task's per-step reward range; with a
            ``budget`` it is the starting value that eq. (3) adapts.
        config: training settings.
        budget: episode cost budget ``d`` for PPO-Lagrangian (eq. 3); ``None`` keeps ``k`` fixed.
        seed: seeds PPO, the environment and numpy's global generator (bullet-safety-gym draws
            its resets from it), so equal seeds give equal snapshots.
        cache_dir: when given, snapshots are stored under it and reused by later calls with the
            same task, penalty, seed and config.
        on_step: called with the number of new environment steps as training proceeds (for a
            progress bar); when snapshots come from the cache it is called once with the total.
    """
    folder = None
    if cache_dir is not None:
        folder = Path(cache_dir) / _cache_key(task, penalty, budget, seed, config)
        cached = _load_snapshots(folder, task, budget, config)
        if cached is not None:
            if on_step is not None:
                on_step(config.train_steps)
            return cached

    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    venv = VecNormalize(
        DummyVecEnv([lambda: make_shaped_env(task, penalty)]), gamma=config.gamma
    )
    n_steps = max(2, min(config.n_steps, config.train_steps))
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=n_steps,
        batch_size=min(config.batch_size, n_steps),
        n_epochs=config.n_epochs,
        learning_rate=config.learning_rate,
        gamma=config.gamma,
        policy_kwargs={"net_arch": list(config.net_arch)},
        seed=seed,
        device="cpu",
        verbose=0,
    )
    targets = list(config.checkpoint_steps())
    snapshots: list[BehaviourPolicy] = []
    horizon = task_info(task).max_episode_steps
    lagrange = {"k": penalty, "running_cost": 0.0, "ended": []}

    def snapshot(step: int) -> None:
        policy = copy.deepcopy(model.policy)  # no fresh init: leaves torch's RNG untouched
        policy.set_training_mode(False)
        rms = venv.obs_rms
        snapshots.append(
            BehaviourPolicy(float(lagrange["k"]), step, policy, rms.mean.copy(),
                            rms.var.copy(), clip_obs=venv.clip_obs, budget=budget)
        )

    class SnapshotCallback(BaseCallback):
        """Snapshot at each checkpoint, report progress, and adapt ``k`` by eq. (3)."""

        def _on_step(self) -> bool:
            while targets and self.num_timesteps >= targets[0]:
                snapshot(targets.pop(0))
            info, done = self.locals["infos"][0], self.locals["dones"][0]
            lagrange["running_cost"] += info["cost"]
            if done:
                lagrange["ended"].append(lagrange["running_cost"])
                lagrange["running_cost"] = 0.0
            if on_step is not None:
                on_step(1)
            return True

        def _on_rollout_end(self) -> None:
            if budget is None or not lagrange["ended"]:
                return
            mean_cost = float(np.mean(lagrange["ended"]))
            lagrange["ended"] = []
            step = config.lagrange_lr * (mean_cost - budget) / horizon
            lagrange["k"] = max(0.0, lagrange["k"] + step)  # eq. (3)
            venv.set_attr("penalty", lagrange["k"])

    while targets and targets[0] == 0:
        snapshot(targets.pop(0))
    if targets:
        model.learn(total_timesteps=targets[-1], callback=SnapshotCallback())
    venv.close()
    if folder is not None:
        meta = {"task": task_info(task).env_id, "penalty": penalty, "budget": budget,
                "seed": seed, "config": asdict(config)}
        _save_snapshots(folder, snapshots, meta)
    return snapshots
