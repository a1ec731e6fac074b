"""Roll behaviour policies out in the real environment and save a DSRL-format dataset.

The behaviour runs are one PPO run per fixed penalty ``k`` (eq. 1 of ``behaviour.py``) and one
PPO-Lagrangian run per cost budget ``d`` (eq. 3). Every (run, checkpoint, noise level) triple
is one *source*. Episodes are dealt to the
sources in turn, so each gets ``n_episodes // n_sources`` episodes or one more. In an episode the
source's snapshot gives its mean action ``μ(s)``, and the action sent to the environment is

    a = clip(μ(s) + σ · (high - low) / 2 · ε,  low, high),     ε ~ N(0, I)             (2)

with ``σ`` the noise level. The stored action is the clipped one the environment received.
Every episode draws its reset seed and its noise from its own ``SeedSequence([seed, i])``, and
numpy's global generator is seeded from it for the episode (bullet-safety-gym draws its resets
from there) and restored afterwards, so a seed fixes the whole dataset.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from retrofit.collect.behaviour import BehaviourConfig, BehaviourPolicy, train_behaviour_policies
from retrofit.config_base import Config
from retrofit.data.validation import DSRL_KEYS
from retrofit.envs import make_env, step_env
from retrofit.errors import ConfigError
from retrofit.tasks import normalized_score, task_info
from retrofit.thresholds import is_safe_trajectory

if TYPE_CHECKING:
    from retrofit.data.dataset import TrajectoryDataset
    from retrofit.progress import ProgressBar

DEFAULT_PENALTIES: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0)
DEFAULT_NOISE_LEVELS: tuple[float, ...] = (0.0, 0.15, 0.4)
DEFAULT_BUDGETS: tuple[float, ...] = (0.25, 0.5, 1.0, 1.5)


@dataclass(frozen=True)
class CollectConfig(Config):
    """Settings of one collection run (JSON-serialisable with ``dataclasses.asdict``).

    Attributes:
        penalties: the ``k`` of eq. (1) (``behaviour.py``), in units of the task's per-step
            reward range; ``0`` ignores cost, ``1`` charges one step of top reward per unit of
            cost. The default spans reckless to cautious policies, as DSRL's behaviour set does.
        budgets: cost budgets ``d`` of PPO-Lagrangian runs (eq. 3), as multiples of the task's
            largest cost threshold (BulletGym 40, SafetyGym 80). Fixed penalties give
            all-or-nothing policies on per-step costs; budget runs fill the costs in between.
        noise_levels: ``σ`` of eq. (2), as a fraction of the half action range.
        switch_fraction: share of episodes in which one run's final policy hands over to
            another's at a uniformly drawn step. A policy without time or cost-so-far in its
            observation cannot plan to spend a budget, so even Lagrangian runs end up
            all-or-nothing; switching episodes (e.g. fast, then cautious) fill the costs and
            rewards in between, as DSRL's data do.
        behaviour: PPO training settings and checkpoints of each behaviour policy.
        seed: seeds training (``seed`` plus the run's index, penalties first) and rollouts.
    """

    penalties: tuple[float, ...] = DEFAULT_PENALTIES
    budgets: tuple[float, ...] = DEFAULT_BUDGETS
    noise_levels: tuple[float, ...] = DEFAULT_NOISE_LEVELS
    switch_fraction: float = 0.3
    behaviour: BehaviourConfig = field(default_factory=BehaviourConfig)
    seed: int = 0

    def check(self) -> None:
        """Penalties, budgets and noise levels >= 0, a switch share in [0, 1], at least one
        behaviour run and one noise level."""
        for name in ("penalties", "budgets"):
            values = getattr(self, name)
            if any(v < 0 for v in values):
                raise ConfigError(
                    f"{name}={values} must hold finite numbers >= 0, e.g. {name}="
                    f"{(DEFAULT_PENALTIES if name == 'penalties' else DEFAULT_BUDGETS)}."
                )
        if not 0.0 <= self.switch_fraction <= 1.0:
            raise ConfigError(
                f"switch_fraction={self.switch_fraction} must be in [0, 1], e.g. 0.3."
            )
        if not self.penalties and not self.budgets:
            raise ConfigError(
                "penalties=() and budgets=(): give at least one behaviour run, e.g. "
                "penalties=(0, 0.5, 1)."
            )
        if not self.noise_levels or any(s < 0 for s in self.noise_levels):
            raise ConfigError(
                f"noise_levels={self.noise_levels} must be a non-empty tuple of finite numbers "
                ">= 0 (fractions of the half action range), e.g. (0, 0.15, 0.4)."
            )


#: Episodes per rollout checkpoint: with a ``cache_dir``, each block of rolled-out episodes is
#: saved there, so a killed collection loses at most one block of rollouts.
ROLLOUT_BLOCK = 50
_PROVENANCE_KEYS = ("penalty", "budget", "checkpoint", "noise", "switch", "switch_penalty",
                    "switch_budget")
_BLOCK_FORMAT = 1


class _RolloutBlocks:
    """Blocks of rolled-out episodes cached under ``cache_dir/rollouts/<key>/``.

    The key hashes the task and the whole :class:`CollectConfig` (its seed included): episode
    ``i`` depends on nothing else, so a block is valid for any ``n_episodes``. A block is an
    ``.npz`` of the concatenated DSRL arrays, the episode lengths and the provenance as JSON,
    written atomically; a damaged one is recomputed.
    """

    def __init__(self, cache_dir: str | Path | None, task: str, config: CollectConfig) -> None:
        self.folder: Path | None = None
        if cache_dir is not None:
            text = json.dumps({"task": task, "config": asdict(config), "format": _BLOCK_FORMAT},
                              sort_keys=True)
            key = hashlib.sha256(text.encode()).hexdigest()[:16]
            self.folder = Path(cache_dir) / "rollouts" / key

    def _path(self, lo: int, hi: int) -> Path:
        assert self.folder is not None
        return self.folder / f"episodes{lo:07d}-{hi:07d}.npz"

    def load(self, lo: int, hi: int) -> tuple[list[dict[str, np.ndarray]], dict] | None:
        """The episodes ``lo..hi-1`` and their provenance, or ``None`` if not cached (or bad)."""
        if self.folder is None or not self._path(lo, hi).is_file():
            return None
        try:
            with np.load(self._path(lo, hi), allow_pickle=False) as npz:
                lengths = npz["lengths"]
                ends = np.cumsum(lengths)[:-1]
                arrays = {k: np.split(npz[k], ends) for k in DSRL_KEYS}
                provenance = json.loads(str(npz["provenance"]))
        except (OSError, ValueError, KeyError):
            return None
        if len(lengths) != hi - lo:
            return None
        episodes = [{k: arrays[k][j] for k in DSRL_KEYS} for j in range(hi - lo)]
        return episodes, provenance

    def save(self, lo: int, hi: int, episodes: list[dict[str, np.ndarray]],
             provenance: dict) -> None:
        """Write one block atomically (nothing without a ``cache_dir``)."""
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(lo, hi)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, lengths=np.array([len(e["rewards"]) for e in episodes]),
                         provenance=np.array(json.dumps(provenance)),
                         **{k: np.concatenate([e[k] for e in episodes]) for k in DSRL_KEYS})
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@dataclass(frozen=True)
class _Source:
    policy: BehaviourPolicy
    noise: float


@contextmanager
def _global_numpy_seed(seed: int) -> Iterator[None]:
    """Seed numpy's global generator inside the block and restore its state afterwards."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def rollout_episode(
    env: Any,
    policy: BehaviourPolicy,
    noise: float,
    seed: int | Sequence[int],
    *,
    switch_to: BehaviourPolicy | None = None,
    switch_step: int = 0,
) -> dict[str, np.ndarray]:
    """Run one episode with the noisy, clipped actions of eq. (2); return its DSRL arrays.

    ``seed`` (an int or a sequence of ints) is expanded by ``numpy.random.SeedSequence`` into the
    reset seed, the noise and, for the episode's duration, numpy's global generator. With
    ``switch_to``, that policy acts from step ``switch_step`` on. The last step has
    ``terminals=True`` when the environment terminated and ``timeouts=True`` when the time limit
    cut the episode.
    """
    seq = np.random.SeedSequence(seed)
    reset_seed, global_seed = (int(x) for x in seq.generate_state(2))
    rng = np.random.default_rng(seq.spawn(1)[0])
    low = np.asarray(env.action_space.low, dtype=np.float64)
    high = np.asarray(env.action_space.high, dtype=np.float64)
    half_range = (high - low) / 2.0
    steps: dict[str, list] = {k: [] for k in ("obs", "next", "act", "rew", "cost", "term", "tout")}
    with _global_numpy_seed(global_seed):
        obs, _ = env.reset(seed=reset_seed)
        done, t = False, 0
        while not done:
            acting = switch_to if switch_to is not None and t >= switch_step else policy
            mean = acting.act(obs)
            action = np.clip(mean + noise * half_range * rng.standard_normal(mean.shape), low, high)
            action = action.astype(np.float32)
            next_obs, reward, cost, terminated, truncated, _ = step_env(env, action)
            timeout = truncated and not terminated
            row = (obs, next_obs, action, reward, cost, terminated, timeout)
            for key, value in zip(steps, row, strict=True):
                steps[key].append(value)
            obs, done, t = next_obs, terminated or truncated, t + 1
    return {
        "observations": np.asarray(steps["obs"], dtype=np.float32),
        "next_observations": np.asarray(steps["next"], dtype=np.float32),
        "actions": np.asarray(steps["act"], dtype=np.float32),
        "rewards": np.asarray(steps["rew"], dtype=np.float32),
        "costs": np.asarray(steps["cost"], dtype=np.float32),
        "terminals": np.asarray(steps["term"], dtype=bool),
        "timeouts": np.asarray(steps["tout"], dtype=bool),
    }


def collect(
    task: str,
    n_episodes: int,
    config: CollectConfig | None = None,
    *,
    progress: bool = True,
    cache_dir: str | Path | None = None,
    workers: int = 1,
) -> TrajectoryDataset:
    """Train the behaviour policies, roll them out and return the dataset (nothing is written).

    ``workers > 1`` trains that many behaviour runs at once, each in a fresh process with this
    process's torch thread count; every run is seeded on its own, so the dataset is the same.

    ``metadata["provenance"]`` lists, per episode, the ``penalty`` (``k`` at the snapshot),
    ``budget`` (absolute cost budget of a Lagrangian run, else ``None``), ``checkpoint`` (training
    steps) and ``noise`` that made it, and ``switch``: ``None``, or the ``step`` at which the
    final policy of the run with ``switch_penalty`` / ``switch_budget`` took over.
    ``metadata["collect_config"]`` is ``asdict(config)``.
    See :func:`collect_dataset` for the arguments.
    """
    from retrofit import __version__
    from retrofit.data.dataset import TrajectoryDataset
    from retrofit.progress import progress_bar

    config = config or CollectConfig()
    if n_episodes < 1:
        raise ConfigError(f"n_episodes={n_episodes} must be >= 1.")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers={workers!r} (--workers) must be an integer >= 1.")
    info = task_info(task)

    max_cost_threshold = max(info.cost_thresholds)
    runs: list[tuple[float, float | None]] = [(k, None) for k in config.penalties]
    runs += [(0.0, b * max_cost_threshold) for b in config.budgets]
    jobs = [(info.env_id, penalty, config.behaviour, budget, config.seed + index, cache_dir)
            for index, (penalty, budget) in enumerate(runs)]
    with progress_bar(len(runs) * config.behaviour.train_steps, f"train {len(runs)} PPO",
                      unit="step", disable=not progress) as bar:
        if workers > 1 and len(jobs) > 1:
            trained = _train_in_workers(jobs, workers, bar)
        else:
            trained = []
            for job in jobs:
                bar.set_postfix_str(f"k={job[1]:g}" if job[3] is None else f"d={job[3]:g}")
                trained.append(_train_run(*job, on_step=bar.update))
    per_run = [[_Source(snap, noise) for snap in snapshots for noise in config.noise_levels]
               for snapshots in trained]
    # runs vary fastest, so even a few episodes come from several behaviour policies
    sources = [source for group in zip(*per_run, strict=True) for source in group]
    finals = [group[-1].policy for group in per_run]
    blocks = _RolloutBlocks(cache_dir, info.env_id, config)
    env = make_env(info.env_id)
    trajectories: list[dict[str, np.ndarray]] = []
    provenance: dict[str, list] = {key: [] for key in _PROVENANCE_KEYS}
    switching = [
        len(finals) > 1
        and int((i + 1) * config.switch_fraction) > int(i * config.switch_fraction)
        for i in range(n_episodes)
    ]  # spreads the switching episodes evenly through the dataset
    try:
        with progress_bar(n_episodes, "collect", unit="episode", disable=not progress) as bar:
            for lo in range(0, n_episodes, ROLLOUT_BLOCK):
                hi = min(lo + ROLLOUT_BLOCK, n_episodes)
                block = blocks.load(lo, hi)
                if block is None:
                    block = ([], {key: [] for key in _PROVENANCE_KEYS})
                    plain = lo - sum(switching[:lo])
                    for i in range(lo, hi):
                        then, switch_step = None, None
                        if switching[i]:
                            pick = np.random.default_rng([config.seed, i, 1])
                            first, second = pick.choice(len(finals), size=2, replace=False)
                            switch_step = int(pick.integers(1, info.max_episode_steps))
                            source = _Source(finals[first],
                                             float(pick.choice(config.noise_levels)))
                            then = finals[second]
                        else:
                            source, plain = sources[plain % len(sources)], plain + 1
                        block[0].append(
                            rollout_episode(env, source.policy, source.noise, [config.seed, i],
                                            switch_to=then, switch_step=switch_step or 0)
                        )
                        prov = block[1]
                        prov["penalty"].append(float(source.policy.penalty))
                        prov["budget"].append(source.policy.budget)
                        prov["checkpoint"].append(int(source.policy.step))
                        prov["noise"].append(float(source.noise))
                        prov["switch"].append(switch_step)
                        prov["switch_penalty"].append(
                            None if then is None else float(then.penalty))
                        prov["switch_budget"].append(None if then is None else then.budget)
                        bar.update(1)
                    blocks.save(lo, hi, *block)
                else:
                    bar.update(hi - lo)
                trajectories += block[0]
                for key in _PROVENANCE_KEYS:
                    provenance[key] += block[1][key]
    finally:
        env.close()
    # No wall-clock times in the metadata: the file is a function of (task, n_episodes, config)
    # alone, so a resumed or cached collection writes the same bytes as an uninterrupted one.
    metadata = {
        "source": "retrofit.collect",
        "retrofit_version": __version__,
        "collect_config": asdict(config),
        "provenance": provenance,
    }
    return TrajectoryDataset.from_trajectories(trajectories, task=info.env_id, metadata=metadata)


def _train_run(env_id: str, penalty: float, behaviour: BehaviourConfig, budget: float | None,
               seed: int, cache_dir: str | Path | None, threads: int | None = None,
               on_step: Callable[[int], Any] | None = None) -> list[BehaviourPolicy]:
    """One behaviour run's snapshots (a module-level function, so a worker process can run it)."""
    if threads is not None:
        torch.set_num_threads(threads)
    return train_behaviour_policies(env_id, penalty, behaviour, budget=budget, seed=seed,
                                    cache_dir=cache_dir, on_step=on_step)


def _train_in_workers(jobs: list[tuple], workers: int, bar: ProgressBar
                      ) -> list[list[BehaviourPolicy]]:
    """Train the runs ``workers`` at a time in spawned processes; results in ``jobs`` order."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")
    threads = torch.get_num_threads()
    results: list[list[BehaviourPolicy] | None] = [None] * len(jobs)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(_train_run, *job, threads): i for i, job in enumerate(jobs)}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            bar.update(jobs[futures[future]][2].train_steps)
    return [r for r in results if r is not None]


def default_cache_dir(out: str | Path) -> Path:
    """Where a collection into ``out`` checkpoints when no ``cache_dir`` is given: beside the
    file (``<out>.collect-cache``), or in an output folder (``<out>/collect-cache``)."""
    path = Path(out)
    if path.is_dir() or not path.suffix:
        return path / "collect-cache"
    return path.with_name(f"{path.name}.collect-cache")


def collect_dataset(
    task: str,
    out: str | Path | None,
    n_episodes: int,
    *,
    penalties: Sequence[float] = DEFAULT_PENALTIES,
    budgets: Sequence[float] = DEFAULT_BUDGETS,
    switch_fraction: float = CollectConfig.switch_fraction,
    train_steps: int = BehaviourConfig.train_steps,
    checkpoints: Sequence[float] = BehaviourConfig.checkpoints,
    noise_levels: Sequence[float] = DEFAULT_NOISE_LEVELS,
    seed: int = 0,
    progress: bool = True,
    cache_dir: str | Path | None = None,
    overwrite: bool = False,
    workers: int = 1,
) -> TrajectoryDataset:
    """Make a DSRL-format dataset of ``task`` in its real environment and write it to ``out``.

    Args:
        task: DSRL id or short name (``"BallRun"``, ``"OfflineBallRun-v0"``).
        out: path of the ``.hdf5`` file to write (gzip-compressed, atomically); a folder (an
            existing one, or a path without suffix) gets the file under a DSRL-like name
            (:func:`dsrl_filename`); ``None`` writes nothing.
        n_episodes: number of episodes, dealt evenly to the (run, checkpoint, noise) sources.
        penalties: ``k`` values of fixed-penalty PPO runs (eq. 1 of ``behaviour.py``).
        budgets: cost budgets of PPO-Lagrangian runs (eq. 3), as multiples of the task's largest
            cost threshold.
        switch_fraction: share of episodes in which one run's final policy hands over to
            another's mid-episode (see :class:`CollectConfig`).
        train_steps: PPO environment steps per penalty.
        checkpoints: fractions of ``train_steps`` at which snapshots become behaviour policies.
        noise_levels: Gaussian action-noise scales (fractions of the half action range).
        seed: fixes training and rollouts; equal seeds give equal datasets.
        progress: show progress (a tqdm bar on a terminal, a line per tenth on a pipe;
            ``retrofit.progress``).
        cache_dir: reuse trained snapshots and rolled-out blocks from this folder (and store
            new ones there). Default with an ``out``: :func:`default_cache_dir`, removed once
            the file is written, so a killed collection resumes when run again.
        overwrite: replace an existing output file; without it an existing one is refused
            before any training (:func:`check_collect_output`).
        workers: behaviour runs trained at once, each in its own process (same dataset).

    Returns:
        The :class:`~retrofit.data.dataset.TrajectoryDataset`; its ``metadata`` records the config
        and each episode's provenance.
    """
    if isinstance(train_steps, bool) or not isinstance(train_steps, int) or train_steps < 1:
        raise ConfigError(
            f"train_steps={train_steps!r} (--train-steps) must be an integer >= 1: with no PPO "
            "training every behaviour policy would be the untrained one (checkpoint 0.0 "
            "already adds untrained snapshots). Give e.g. 60000."
        )
    config = CollectConfig(
        penalties=tuple(float(k) for k in penalties),
        budgets=tuple(float(b) for b in budgets),
        switch_fraction=float(switch_fraction),
        noise_levels=tuple(float(s) for s in noise_levels),
        behaviour=BehaviourConfig(
            train_steps=int(train_steps), checkpoints=tuple(float(f) for f in checkpoints)
        ),
        seed=int(seed),
    )
    default_cache = None
    if out is not None:
        check_collect_output(task, out, n_episodes, overwrite=overwrite, cache_dir=cache_dir)
        if cache_dir is None:  # beside the output, whose folder was just checked
            cache_dir = default_cache = default_cache_dir(out)
    dataset = collect(task, n_episodes, config, progress=progress, cache_dir=cache_dir,
                      workers=workers)
    if out is not None:
        path = Path(out)
        if path.is_dir() or not path.suffix:
            path = path / dsrl_filename(dataset)
        if path.exists() and not overwrite:  # a file named by its max cost appeared meanwhile
            raise ConfigError(f"out: {str(path)!r} exists; pass overwrite=True to replace it.")
        dataset.to_hdf5(path)
    if default_cache is not None:  # only a checkpoint: the dataset is written
        shutil.rmtree(default_cache, ignore_errors=True)
    return dataset


def check_collect_output(task: str, out: str | Path, n_episodes: int, *, overwrite: bool = False,
                         cache_dir: str | Path | None = None) -> None:
    """Refuse, before any training, an output that exists or cannot be written.

    ``out`` as a file: it must not exist (unless ``overwrite``) and its folder must be writable.
    ``out`` as a folder: it must be writable and hold no ``Safety<Task>-*-<n_episodes>.hdf5``
    (the file :func:`dsrl_filename` would name; its max-cost part is known only at the end).
    ``cache_dir`` must be writable too.
    """
    from retrofit.outputs import check_output_file, check_writable

    if isinstance(n_episodes, bool) or not isinstance(n_episodes, int) or n_episodes < 1:
        raise ConfigError(f"n_episodes={n_episodes!r} must be an integer >= 1 "
                          "(--collect-episodes).")
    path = Path(out)
    if cache_dir is not None:
        check_writable(cache_dir, option="--cache-dir")
    if path.is_dir() or not path.suffix:
        check_writable(path)
        if path.is_dir() and not overwrite:
            name = task_info(task).env_id.removeprefix("Offline")
            clashes = sorted(p.name for p in path.glob(f"Safety{name}-*-{n_episodes}.hdf5"))
            if clashes:
                raise ConfigError(
                    f"--out {str(path)!r} already holds {clashes[0]} ({name}, {n_episodes} "
                    "episodes), which this run could replace; pass --overwrite, or choose "
                    "another --out."
                )
        return
    check_output_file(path, overwrite)


def dsrl_filename(dataset: TrajectoryDataset) -> str:
    """Return a DSRL-style file name, ``Safety<Task>-<version>-<max cost>-<episodes>.hdf5``.

    As in DSRL's ``SafetyBallRun-v0-80-940.hdf5``, the numbers are the largest episode cost
    (rounded up) and the number of episodes.
    """
    _, costs = dataset.episode_returns()
    name = (dataset.task or "Unknown").removeprefix("Offline")
    return f"Safety{name}-{math.ceil(float(costs.max()))}-{dataset.n_episodes}.hdf5"


def dataset_stats(dataset: TrajectoryDataset) -> dict[str, Any]:
    """Return per-dataset statistics used in ``docs/collection.md``.

    Keys: ``episodes``, ``transitions``, reward/cost return ``min``/``max``/``mean``, normalised
    reward range, and for every threshold ``κ`` of the task the safe fraction, the best
    normalised reward among safe episodes, and the safe fraction of the top-decile-reward episodes
    (safe: cost return ``< κ``, :func:`retrofit.thresholds.is_safe_trajectory`).
    """
    info = task_info(dataset.task or "")
    rewards, costs = dataset.episode_returns()
    norm_reward, _ = normalized_score(info.env_id, rewards, costs, info.cost_thresholds[0])
    top = rewards >= np.quantile(rewards, 0.9)
    stats: dict[str, Any] = {
        "task": info.env_id,
        "episodes": dataset.n_episodes,
        "transitions": len(dataset),
        "reward_min": float(rewards.min()),
        "reward_max": float(rewards.max()),
        "reward_mean": float(rewards.mean()),
        "cost_min": float(costs.min()),
        "cost_max": float(costs.max()),
        "cost_mean": float(costs.mean()),
        "norm_reward_min": float(norm_reward.min()),
        "norm_reward_max": float(norm_reward.max()),
        "thresholds": {},
    }
    for cost_threshold in info.cost_thresholds:
        safe = is_safe_trajectory(costs, cost_threshold)
        stats["thresholds"][cost_threshold] = {
            "safe_fraction": float(safe.mean()),
            "best_safe_norm_reward": float(norm_reward[safe].max()) if safe.any() else None,
            "top_decile_safe_fraction": float(safe[top].mean()),
        }
    return stats


def _run_label(name: str, value: float) -> str:
    return "switching" if name == "switch" else f"{name}={value:g}"


def plot_dataset(dataset: TrajectoryDataset, path: str | Path) -> Path:
    """Save the reward–cost scatter of the dataset's episodes (one point each) as a PNG.

    Points are coloured by their behaviour run (fixed penalty ``k``, budget ``d``, or switching
    between two runs) when the metadata has provenance; dashed lines mark the cost thresholds.
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure  # no pyplot: leaves the user's backend alone

    info = task_info(dataset.task or "")
    rewards, costs = dataset.episode_returns()
    prov = dataset.metadata.get("provenance", {})
    fig = Figure(figsize=(6.4, 4.4), dpi=120)
    ax = fig.subplots()
    if "penalty" in prov:
        budgets = prov.get("budget", [None] * len(prov["penalty"]))
        switches = prov.get("switch", [None] * len(budgets))
        runs = [
            ("switch", 0.0) if m is not None else ("k", k) if b is None else ("d", b)
            for k, b, m in zip(prov["penalty"], budgets, switches, strict=True)
        ]
        labels = np.array([_run_label(name, v) for name, v in runs])
        order = sorted(set(runs))
        cmap = colormaps["viridis"].resampled(max(len(order), 2))
        for j, (name, v) in enumerate(order):
            label = _run_label(name, v)
            mask = labels == label
            ax.scatter(costs[mask], rewards[mask], s=8, alpha=0.6, color=cmap(j), label=label)
        ax.legend(title="behaviour run", fontsize=7, loc="lower right", ncol=2)
    else:
        ax.scatter(costs, rewards, s=8, alpha=0.6)
    from retrofit.plotting import mark_thresholds

    mark_thresholds(ax, info.cost_thresholds)  # one row per label: κ = 10, 20 never overlap
    ax.set_xlabel("episode cost return")
    ax.set_ylabel("episode reward return")
    ax.set_title(f"{info.env_id}: {dataset.n_episodes} episodes")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
