"""Evaluate a policy in a DSRL task's real environment: returns, costs and DSRL-normalised scores.

``evaluate`` runs whole episodes (DSRL's time limit) in dsrl's own ``Offline*`` environment and
normalises each episode's return and cost with ``retrofit.tasks.normalized_score`` (the same
numbers as dsrl's ``get_normalized_score`` after ``set_target_cost``). With ``n_envs > 1`` several
environment instances step in lockstep in this process and the policy is called once per step on
the batch of their observations (docs/evaluation.md has the speed-up).

Reproducibility: episode ``i`` is reset with seed ``seed + i`` whichever environment instance runs
it, so per-episode results do not depend on ``n_envs`` for a deterministic policy.
"""

from __future__ import annotations

import contextlib
import json
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from retrofit.envs import make_env, step_env
from retrofit.errors import ConfigError, PolicyError
from retrofit.tasks import normalized_score, task_info
from retrofit.thresholds import check_cost_threshold, is_safe_on_average

ActFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, eq=False)
class EvaluationResult:
    """Per-episode and mean returns, costs and DSRL-normalised scores of one evaluation.

    Per-episode arrays (read-only, length ``episodes``, in episode order): ``rewards``, ``costs``
    (undiscounted sums), ``lengths`` (steps), ``normalized_rewards``, ``normalized_costs``.
    Means: ``reward``, ``cost``, ``normalized_reward``, ``normalized_cost``. ``safe`` is
    ``normalized_cost <= 1`` (the mean episode cost is within ``cost_threshold``;
    :func:`retrofit.thresholds.is_safe_on_average`, DSRL's policy-level criterion).
    ``out_of_bounds_fraction`` is the fraction of steps whose action had a component outside the
    action space (passed to the environment unchanged). ``wall_clock_s`` covers creating the
    environments and running every episode.
    """

    task: str
    cost_threshold: float
    episodes: int
    seed: int
    deterministic: bool
    n_envs: int
    rewards: np.ndarray
    costs: np.ndarray
    lengths: np.ndarray
    normalized_rewards: np.ndarray
    normalized_costs: np.ndarray
    reward: float
    cost: float
    normalized_reward: float
    normalized_cost: float
    safe: bool
    out_of_bounds_fraction: float
    wall_clock_s: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict: the means, the settings and the per-episode lists."""
        out: dict[str, Any] = {}
        for name, value in self.__dict__.items():
            if isinstance(value, np.ndarray):
                out[name] = value.tolist()
            elif isinstance(value, np.generic):
                out[name] = value.item()
            else:
                out[name] = value
        return out

    def to_json(self) -> str:
        """``to_dict()`` as an indented JSON string."""
        return json.dumps(self.to_dict(), indent=2)

    def __str__(self) -> str:
        verdict = "safe" if self.safe else "UNSAFE"
        mode = "deterministic" if self.deterministic else "stochastic"
        lines = [
            f"{self.task} (cost threshold {self.cost_threshold:g}): "
            f"normalized reward {self.normalized_reward:.3f} "
            f"± {float(np.std(self.normalized_rewards)):.3f}, "
            f"normalized cost {self.normalized_cost:.3f} "
            f"± {float(np.std(self.normalized_costs)):.3f} ({verdict})",
            f"  reward {self.reward:.2f}, cost {self.cost:.2f}, "
            f"episode length {float(np.mean(self.lengths)):.1f}; {self.episodes} {mode} episodes, "
            f"seed {self.seed}, {self.n_envs} env(s), {self.wall_clock_s:.2f} s",
        ]
        if self.out_of_bounds_fraction > 0:
            lines.append(
                f"  {100 * self.out_of_bounds_fraction:.1f}% of actions were outside the action "
                "space and were passed to the environment unchanged"
            )
        return "\n".join(lines)


def evaluate(
    policy: Any,
    task: str,
    cost_threshold: float,
    episodes: int = 20,
    seed: int = 0,
    deterministic: bool = True,
    n_envs: int = 1,
    progress: bool = False,
) -> EvaluationResult:
    """Run ``episodes`` episodes of ``policy`` in ``task``'s environment and score them.

    Args:
        policy: a ``PolicyAdapter`` (anything with ``act(obs_batch, deterministic)``), anything
            ``retrofit.adapters.wrap`` accepts, or a plain callable ``f(obs_batch) -> actions``
            (called with ``(n, observation_dim)`` float32, returning ``(n, action_dim)``;
            ``deterministic`` does not apply to it).
        task: a DSRL env id (``OfflineBallRun-v0``) or short name (``BallRun``).
        cost_threshold: κ of the normalised cost; ``0`` uses DSRL's ``ε = 1``.
        episodes: number of episodes (OSRL evaluates 20 per checkpoint, PREFINE 100).
        seed: episode ``i`` is reset with ``seed + i``; the policy's random streams (numpy,
            Python, torch) are seeded with ``seed`` for the call and restored afterwards.
        deterministic: passed to ``act``: the policy's mode action rather than a sample.
        n_envs: environment instances stepped in lockstep, one batched policy call per step.
            Per-episode results equal those of ``n_envs=1`` for a deterministic policy.
        progress: show a progress bar over episodes (retrofit.progress).

    Actions reach the environment exactly as the policy returns them (environments clip);
    ``out_of_bounds_fraction`` records how often they were outside the action space.
    """
    info = task_info(task)
    _check_settings(cost_threshold, episodes, seed, n_envs)
    act, memory = _act_fn(policy, deterministic)
    n_envs = min(n_envs, episodes)

    start = time.perf_counter()
    with _global_rng(seed):  # bullet-safety-gym draws from the global streams while building
        envs = [make_env(info.env_id) for _ in range(n_envs)]
    try:
        with _seeded_policy_rng(seed):
            rewards, costs, lengths, out_of_bounds, steps = _run_episodes(
                envs, act, episodes, seed, progress, info.env_id, memory
            )
    finally:
        for env in envs:
            env.close()
    wall_clock_s = time.perf_counter() - start

    norm_rewards, norm_costs = normalized_score(info.env_id, rewards, costs, cost_threshold)
    for array in (rewards, costs, lengths, norm_rewards, norm_costs):
        array.setflags(write=False)
    normalized_cost = float(np.mean(norm_costs))
    return EvaluationResult(
        task=info.env_id,
        cost_threshold=float(cost_threshold),
        episodes=episodes,
        seed=seed,
        deterministic=deterministic,
        n_envs=n_envs,
        rewards=rewards,
        costs=costs,
        lengths=lengths,
        normalized_rewards=norm_rewards,
        normalized_costs=norm_costs,
        reward=float(np.mean(rewards)),
        cost=float(np.mean(costs)),
        normalized_reward=float(np.mean(norm_rewards)),
        normalized_cost=normalized_cost,
        safe=bool(is_safe_on_average(normalized_cost)),
        out_of_bounds_fraction=out_of_bounds / steps,
        wall_clock_s=wall_clock_s,
    )


def reset_env(env: Any, seed: int) -> np.ndarray:
    """Reset ``env`` reproducibly with ``seed`` and return the first observation.

    The episode then depends only on ``seed`` (and the actions), not on what the instance ran
    before. Two bullet-safety-gym 1.4.0 quirks are handled:

    - it ignores ``reset(seed=...)`` and draws its initial state from the global ``np.random``
      and ``random`` streams, so those are seeded with ``seed`` for the reset and restored
      afterwards (the caller's streams are unaffected);
    - its reset restores a pybullet snapshot, which does not hold motor-control targets: the
      RaceCar's and Drone's last commands carry over into the next episode. The agent's motors
      are put back in their as-built state (velocity control, target 0, force 0) first.

    safety-gymnasium honours the seed and needs neither.
    """
    _release_bullet_motors(env)
    with _global_rng(seed):
        obs, _ = env.reset(seed=seed)
    return np.asarray(obs)


def _release_bullet_motors(env: Any) -> None:
    """Set a bullet-safety-gym agent's motors to velocity control, target 0, force 0 (as built)."""
    agent = getattr(env.unwrapped, "agent", None)
    bullet = getattr(agent, "bc", None)
    if bullet is None or not hasattr(agent, "motor_list"):
        return
    for joint in agent.motor_list:
        bullet.setJointMotorControl2(
            agent.body_id, joint.index, bullet.VELOCITY_CONTROL, targetVelocity=0, force=0
        )


def _run_episodes(
    envs: list[Any], act: ActFn, episodes: int, seed: int, progress: bool, env_id: str,
    memory: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Step ``envs`` in lockstep until ``episodes`` episodes have ended; one policy call a step.

    ``memory``: a policy with the memory hooks (``reset``/``observe``/``retire``,
    ``adapters/base.py``), told where each slot's episode starts, what each step returned and
    when a slot retires; ``None`` for a memoryless policy.
    """
    from retrofit.progress import progress_bar

    rewards = np.zeros(episodes, dtype=np.float64)
    costs = np.zeros(episodes, dtype=np.float64)
    lengths = np.zeros(episodes, dtype=np.int64)
    space = envs[0].action_space
    low, high = np.asarray(space.low), np.asarray(space.high)
    action_dim = int(np.prod(space.shape))

    # slot k runs episode running[k]; episodes are handed out in order as slots free up
    running: list[int] = list(range(len(envs)))
    obs = [reset_env(env, seed + i) for i, env in enumerate(envs)]
    if memory is not None:
        for k in range(len(envs)):
            memory.reset(k)
    next_episode = len(envs)
    out_of_bounds = steps = 0
    with progress_bar(episodes, f"evaluate {env_id}", unit="episode",
                      disable=not progress) as bar:
        while running:
            batch = np.stack([obs[k] for k in range(len(running))]).astype(np.float32)
            actions = _check_actions(act(batch), len(running), action_dim)
            out_of_bounds += int(np.sum(np.any((actions < low) | (actions > high), axis=1)))
            steps += len(running)
            step_rewards = np.zeros(len(running))
            step_costs = np.zeros(len(running))
            ended = []
            for k in range(len(running)):
                episode = running[k]
                o, r, c, terminated, truncated, _ = step_env(envs[k], actions[k])
                step_rewards[k], step_costs[k] = r, c
                rewards[episode] += r
                costs[episode] += c
                lengths[episode] += 1
                obs[k] = np.asarray(o)
                if terminated or truncated:
                    ended.append(k)
            if memory is not None:
                memory.observe(step_rewards, step_costs)
            for k in reversed(ended):
                bar.update(1)
                if next_episode < episodes:
                    running[k] = next_episode
                    obs[k] = reset_env(envs[k], seed + next_episode)
                    if memory is not None:
                        memory.reset(k)
                    next_episode += 1
                else:  # no episodes left: retire the slot (keep env k aligned with slot k)
                    del running[k], obs[k]
                    envs.append(envs.pop(k))
                    if memory is not None:
                        memory.retire(k)
    return rewards, costs, lengths, out_of_bounds, steps


def _check_actions(actions: Any, n: int, action_dim: int) -> np.ndarray:
    """Return the policy's actions as an ``(n, action_dim)`` array, or raise ``PolicyError``."""
    out = np.asarray(actions)
    if out.ndim == 2 and out.shape == (n, action_dim):
        pass
    elif out.ndim == 1 and out.size == n * action_dim:  # e.g. (n,) for a 1-d action space
        out = out.reshape(n, action_dim)
    else:
        raise PolicyError(
            f"The policy returned actions of shape {out.shape} for a batch of {n} observations; "
            f"expected ({n}, {action_dim}). The policy must map an (n, observation_dim) batch to "
            "an (n, action_dim) batch."
        )
    if not np.all(np.isfinite(out)):
        raise PolicyError(
            "The policy returned non-finite actions (NaN or inf). Check its weights and inputs; "
            "environments cannot clip NaN."
        )
    return out


def _memory_hooks(policy: Any) -> Any:
    """``policy`` if it has all three memory hooks (``reset``, ``observe``, ``retire``), else
    ``None``; a policy with only some of them is an error (it would act on a stale memory)."""
    present = [name for name in ("reset", "observe", "retire")
               if callable(getattr(policy, name, None))]
    if not present:
        return None
    if len(present) < 3:
        raise PolicyError(
            f"{type(policy).__name__} has the memory hook(s) {present} but not all of reset, "
            "observe and retire; a policy with memory needs all three (adapters/base.py)."
        )
    return policy


def _act_fn(policy: Any, deterministic: bool) -> tuple[ActFn, Any]:
    """Turn an adapter, a wrappable policy or a plain callable into ``obs_batch -> actions``,
    plus the policy's memory hooks (``None`` for a memoryless policy)."""
    act = getattr(policy, "act", None)
    if callable(act):
        return (lambda obs: act(obs, deterministic=deterministic)), _memory_hooks(policy)
    torch = sys.modules.get("torch")
    is_module = torch is not None and isinstance(policy, torch.nn.Module)
    if callable(policy) and not is_module:
        return policy, _memory_hooks(policy)
    from retrofit.adapters import wrap

    adapter = wrap(policy)
    return (lambda obs: adapter.act(obs, deterministic=deterministic)), _memory_hooks(adapter)


def _check_settings(cost_threshold: float, episodes: int, seed: int, n_envs: int) -> None:
    check_cost_threshold(cost_threshold)
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ConfigError(f"episodes={episodes!r} must be an integer >= 1.")
    if isinstance(n_envs, bool) or not isinstance(n_envs, int) or n_envs < 1:
        raise ConfigError(f"n_envs={n_envs!r} must be an integer >= 1.")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32 - episodes:
        raise ConfigError(
            f"seed={seed!r} must be an integer in [0, 2**32 - episodes): episode i is reset with "
            "seed + i, and numpy seeds must fit in 32 bits."
        )


@contextlib.contextmanager
def _global_rng(seed: int) -> Iterator[None]:
    """Seed the global ``np.random`` and ``random`` streams; restore them on exit."""
    np_state, py_state = np.random.get_state(), random.getstate()
    np.random.seed(seed)
    random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


@contextlib.contextmanager
def _seeded_policy_rng(seed: int) -> Iterator[None]:
    """Seed every stream a stochastic policy may draw from (numpy, Python, torch if loaded).

    The caller's generator states are restored on exit. torch is only touched when something has
    already imported it; CUDA generators only when CUDA is initialised.
    """
    torch = sys.modules.get("torch")
    with contextlib.ExitStack() as stack:
        stack.enter_context(_global_rng(seed))
        if torch is not None:
            cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
            devices = list(range(torch.cuda.device_count())) if cuda else []
            stack.enter_context(torch.random.fork_rng(devices=devices))
            torch.default_generator.manual_seed(seed)
            if cuda:
                torch.cuda.manual_seed_all(seed)
        yield
