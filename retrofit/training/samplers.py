"""Every minibatch sampler of the methods, over data kept on the training device.

One protocol (``Sampler``): ``sample()`` returns the method's batch; ``state_dict()`` /
``load_state_dict()`` carry the random state, so a checkpointed fit resumes bit for bit. Data
arrays become device tensors through one function, ``device_tensor``.

- ``PairedBatcher``: (state, action) pairs of a preferred and a non-preferred set (PREFINE);
- ``SegmentSampler``: windows of consecutive steps of one trajectory set (PPL);
- ``SegmentPairBatcher``: labelled segment pairs of segment feedback (PreSa and its variants);
- ``Transitions``: flat (s, a, r, c, s', d) transitions with a uniform index sampler (the
  offline safe-RL baselines CPQ, SafeDICE, BC).

Two sampling schemes for pairs (PREFINE §4, step 1 of Algorithm 1):
- ``"transitions"``: ``B`` pairs uniformly from each side (default; the same estimator as the
  paper's, with a fixed batch shape).
- ``"trajectories"``: ``k`` whole trajectories from each side and all their steps (Algorithm 1).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import numpy as np
import torch

from retrofit.errors import DataError

Sampling = Literal["transitions", "trajectories"]


class Sampler(Protocol):
    """What a trainer asks of its batch source."""

    def sample(self) -> Any:
        """One minibatch (tensors on the training device)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """The random state (for checkpoints)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``'s random state."""
        ...


def device_tensor(array: Any, device: torch.device, dtype: np.dtype = np.float32) -> torch.Tensor:
    """``array`` as a contiguous tensor of ``dtype`` on ``device`` (the one conversion)."""
    return torch.as_tensor(np.asarray(array, dtype=dtype), device=device)


def seeded_generator(device: torch.device, seed: int) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed``."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def _as_arrays(data: Any, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    for field in ("observations", "actions"):
        if not hasattr(data, field):
            raise DataError(
                f"{name} has no {field!r}: pass a retrofit.TrajectoryDataset (or an object with "
                "observations, actions and episode_starts arrays)."
            )
    obs = np.asarray(data.observations, dtype=np.float32)
    act = np.asarray(data.actions, dtype=np.float32)
    if len(obs) == 0:
        raise DataError(f"{name} is empty: it needs at least one transition.")
    starts = np.asarray(getattr(data, "episode_starts", np.array([0, len(obs)])), dtype=np.int64)
    return obs, act, starts


class PairedBatcher:
    """Draws a preferred and a non-preferred minibatch as one concatenated tensor pair."""

    def __init__(
        self,
        preferred: Any,
        nonpreferred: Any,
        batch_size: int,
        device: torch.device,
        seed: int = 0,
        sampling: Sampling = "transitions",
    ) -> None:
        obs_p, act_p, starts_p = _as_arrays(preferred, "preferred")
        obs_n, act_n, starts_n = _as_arrays(nonpreferred, "nonpreferred")
        if obs_p.shape[1:] != obs_n.shape[1:] or act_p.shape[1:] != act_n.shape[1:]:
            raise DataError(
                f"preferred and nonpreferred disagree on shapes: observations {obs_p.shape[1:]} vs "
                f"{obs_n.shape[1:]}, actions {act_p.shape[1:]} vs {act_n.shape[1:]}."
            )
        if sampling not in ("transitions", "trajectories"):
            raise DataError(f"sampling={sampling!r}: use 'transitions' or 'trajectories'.")
        self.batch_size = batch_size
        self.sampling = sampling
        self.device = device
        self.n_preferred = len(obs_p)
        self.n_nonpreferred = len(obs_n)
        self.obs = device_tensor(np.concatenate([obs_p, obs_n]), device)
        self.act = device_tensor(np.concatenate([act_p, act_n]), device)
        self._starts = (starts_p, starts_n + len(obs_p))
        self._generator = seeded_generator(device, seed)
        self._rng = np.random.default_rng(seed)

    def state_dict(self) -> dict[str, Any]:
        """The random state (torch generator and numpy generator)."""
        return {"torch": self._generator.get_state(), "numpy": self._rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``."""
        self._generator.set_state(state["torch"])
        self._rng.bit_generator.state = state["numpy"]

    def _transition_index(self) -> tuple[torch.Tensor, int]:
        b = self.batch_size
        gen, dev = self._generator, self.device
        idx_p = torch.randint(self.n_preferred, (b,), generator=gen, device=dev)
        idx_n = torch.randint(self.n_nonpreferred, (b,), generator=gen, device=dev)
        return torch.cat([idx_p, idx_n + self.n_preferred]), b

    def _trajectory_index(self) -> tuple[torch.Tensor, int]:
        parts = []
        for starts in self._starts:
            episodes = self._rng.integers(0, len(starts) - 1, size=self.batch_size)
            parts.append(np.concatenate([np.arange(starts[e], starts[e + 1]) for e in episodes]))
        index = torch.as_tensor(np.concatenate(parts), device=self.device)
        return index, len(parts[0])

    def sample_index(self) -> tuple[torch.Tensor, int]:
        """``(rows, n_preferred_rows)``: indices into ``obs``/``act``, preferred rows first."""
        if self.sampling == "transitions":
            return self._transition_index()
        return self._trajectory_index()

    def sample(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Return ``(obs, actions, n_preferred_rows)``: preferred rows first, then non-preferred."""
        index, n_pref = self.sample_index()
        return self.obs[index], self.act[index], n_pref


class SegmentSampler:
    """Random windows of ``length`` steps inside the episodes of one trajectory set."""

    def __init__(self, data: Any, length: int, device: torch.device, rng: np.random.Generator,
                 name: str) -> None:
        for field in ("observations", "actions", "episode_starts"):
            if not hasattr(data, field):
                raise DataError(f"{name} has no {field!r}: pass a retrofit.TrajectoryDataset.")
        starts = np.asarray(data.episode_starts, dtype=np.int64)
        lengths = np.diff(starts)
        if len(lengths) == 0 or lengths.min() < 1:
            raise DataError(f"{name} has no episodes.")
        self.length = int(min(length, lengths.min()))
        valid = [np.arange(s, s + n - self.length + 1) for s, n in zip(starts[:-1], lengths,
                                                                     strict=True)]
        self.window_starts = np.concatenate(valid)
        self.obs = device_tensor(data.observations, device)
        self.act = device_tensor(data.actions, device)
        self.offsets = torch.arange(self.length, device=device)
        self.device = device
        self.rng = rng

    def state_dict(self) -> dict[str, Any]:
        """The random state (shared numpy generator) and the window length in use."""
        return {"numpy": self.rng.bit_generator.state, "length": self.length}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``."""
        self.rng.bit_generator.state = state["numpy"]

    def sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` windows: observations ``(n, K, observation_dim)`` and actions
        ``(n, K, action_dim)``."""
        first = torch.as_tensor(self.rng.choice(self.window_starts, size=n), device=self.device)
        index = first[:, None] + self.offsets[None, :]
        return self.obs[index], self.act[index]


class SegmentBatcher:
    """Samples segment pairs as device tensors ``(B, 2, T, observation_dim)``, actions and labels.

    ``safe_only=True`` draws ``2B`` segments uniformly from the safe ones instead of pairs
    (BC-Safe-Seg). Sampling is uniform with replacement, seeded.
    """

    def __init__(
        self, feedback: Any, batch_size: int, device: torch.device, seed: int = 0,
        safe_only: bool = False,
    ) -> None:
        data = feedback.dataset
        self.batch_size = batch_size
        self.device = device
        self.segment_length = int(feedback.segment_length)
        self.obs = device_tensor(data.observations, device)
        self.act = device_tensor(data.actions, device)
        starts = np.asarray(feedback.starts, dtype=np.int64)
        labels = np.asarray(feedback.safety, dtype=np.int64)
        if safe_only:
            starts = starts[labels > 0].reshape(-1, 1)
            labels = np.ones_like(starts)
            if starts.size == 0:
                raise DataError("BC-Safe-Seg: the feedback has no safe segment to clone.")
        self.safe_only = safe_only
        self.starts = torch.as_tensor(starts, device=device)
        self.labels = torch.as_tensor(labels, device=device, dtype=torch.float32)
        self.offsets = torch.arange(self.segment_length, device=device)
        self._generator = seeded_generator(device, seed)

    def state_dict(self) -> dict[str, Any]:
        """The random state of the pair sampler."""
        return {"torch": self._generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``."""
        self._generator.set_state(state["torch"])

    def sample(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(obs (B, 2, T, observation_dim), act (B, 2, T, action_dim), labels (B, 2),
        rows (B, 2, T))``.

        ``rows`` are the transitions' indices in the dataset.
        """
        b = self.batch_size
        if self.safe_only:
            pick = torch.randint(len(self.starts), (b, 2), generator=self._generator,
                                 device=self.device)
            starts, labels = self.starts[pick, 0], self.labels[pick, 0]
        else:
            pick = torch.randint(len(self.starts), (b,), generator=self._generator,
                                 device=self.device)
            starts, labels = self.starts[pick], self.labels[pick]
        rows = starts[..., None] + self.offsets  # (B, 2, T)
        return self.obs[rows], self.act[rows], labels, rows


_FIELDS = ("observations", "next_observations", "actions", "rewards", "costs", "terminals")


def _concat(datasets: tuple[Any, ...], name: str) -> dict[str, np.ndarray]:
    if not datasets:
        raise DataError(f"{name}: no data; pass at least one TrajectoryDataset.")
    out: dict[str, list[np.ndarray]] = {k: [] for k in (*_FIELDS, "first")}
    for i, data in enumerate(datasets):
        missing = [k for k in (*_FIELDS, "episode_starts") if not hasattr(data, k)]
        if missing:
            raise DataError(
                f"{name}[{i}] ({type(data).__name__}) has no {missing}: pass a "
                "retrofit.TrajectoryDataset (DSRL arrays with rewards, costs and terminals)."
            )
        n = len(data.observations)
        if n == 0:
            raise DataError(f"{name}[{i}] is empty.")
        for key in _FIELDS:
            out[key].append(np.asarray(getattr(data, key)))
        first = np.zeros(n, dtype=bool)
        first[np.asarray(data.episode_starts)[:-1]] = True
        out["first"].append(first)
    return {k: np.concatenate(v) for k, v in out.items()}


class Transitions:
    """Tensors of all transitions of ``datasets`` on ``device`` with a seeded uniform sampler.

    ``obs``, ``next_obs``, ``act`` ``(N, ·)``; ``rewards``, ``costs``, ``dones`` ``(N,)`` float;
    ``initial_obs`` the first observation of every episode. ``obs_mean``/``obs_std`` are numpy
    statistics of ``obs`` (for network normalisers).
    """

    def __init__(self, *datasets: Any, device: torch.device, seed: int = 0,
                 name: str = "data") -> None:
        arrays = _concat(datasets, name)
        self.device = device
        self.obs_mean = arrays["observations"].mean(axis=0)
        self.obs_std = arrays["observations"].std(axis=0)

        self.obs = device_tensor(arrays["observations"], device)
        self.next_obs = device_tensor(arrays["next_observations"], device)
        self.act = device_tensor(arrays["actions"], device)
        self.rewards = device_tensor(arrays["rewards"], device)
        self.costs = device_tensor(arrays["costs"], device)
        self.dones = device_tensor(arrays["terminals"], device)
        self.initial_obs = self.obs[torch.as_tensor(arrays["first"], device=device)]
        self._generator = seeded_generator(device, seed)

    def state_dict(self) -> dict[str, Any]:
        """The random state of the index sampler."""
        return {"torch": self._generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``."""
        self._generator.set_state(state["torch"])

    def sample(self) -> torch.Tensor:
        """Not used: transition methods draw ``index(batch_size)`` themselves."""
        raise NotImplementedError("Transitions: call index(batch_size).")

    def __len__(self) -> int:
        return int(self.obs.shape[0])

    def index(self, batch_size: int, n: int | None = None) -> torch.Tensor:
        """``batch_size`` uniform indices in ``[0, n)`` (default: all transitions)."""
        n = len(self) if n is None else n
        return torch.randint(n, (batch_size,), generator=self._generator, device=self.device)


def returns_to_go(values: np.ndarray, episode_starts: np.ndarray) -> np.ndarray:
    """``Σ_{t' ≥ t} values[t']`` within each episode (undiscounted; CDT §4.1's R̂_t and Ĉ_t)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.empty_like(values)
    starts = np.asarray(episode_starts, dtype=np.int64)
    for lo, hi in zip(starts[:-1], starts[1:], strict=True):
        out[lo:hi] = np.cumsum(values[lo:hi][::-1])[::-1]
    return out


class ContextWindows:
    """Windows of ``K`` consecutive steps for the decision transformer (CDT): per step the
    return-to-go, cost-to-go, state, action, step index in the episode and the step cost.

    A window starts at a uniformly drawn transition and runs ``K`` steps or to the episode's end;
    the steps after the end are padding (``mask`` False, zeros). Padding on the right never
    reaches a real step of a causal model. ``set_returns(rewards, costs)`` replaces the per-step
    rewards and costs (Safe-RLHF's relabelling); they are state (``state_dict`` holds them), since
    they may come from trained models.
    """

    def __init__(self, *datasets: Any, context: int, batch_size: int, device: torch.device,
                 seed: int = 0, name: str = "data") -> None:
        arrays = _concat(datasets, name)
        starts = np.flatnonzero(arrays["first"])
        self.episode_starts = np.append(starts, len(arrays["first"])).astype(np.int64)
        n = len(arrays["first"])
        episode = np.repeat(np.arange(len(starts)), np.diff(self.episode_starts))
        self.context, self.batch_size, self.device = int(context), int(batch_size), device
        self.max_episode_steps = int(np.diff(self.episode_starts).max())
        self.obs = device_tensor(arrays["observations"], device)
        self.act = device_tensor(arrays["actions"], device)
        self.obs_mean = arrays["observations"].mean(axis=0)
        self.obs_std = arrays["observations"].std(axis=0)
        # last index + 1 of each step's episode, and each step's index inside it
        self._ends = torch.as_tensor(self.episode_starts[1:][episode], device=device)
        self._timestep = torch.as_tensor(np.arange(n) - self.episode_starts[:-1][episode],
                                         device=device)
        self._offsets = torch.arange(self.context, device=device)
        self._generator = seeded_generator(device, seed)
        self.set_returns(arrays["rewards"], arrays["costs"])

    def set_returns(self, rewards: Any, costs: Any) -> None:
        """Per-step rewards and costs (ground truth or a model's); recomputes the to-go sums."""
        rewards = np.asarray(rewards, dtype=np.float64)
        costs = np.asarray(costs, dtype=np.float64)
        if rewards.shape != (len(self.obs),) or costs.shape != (len(self.obs),):
            raise DataError(f"set_returns: expected {len(self.obs)} rewards and costs, got "
                            f"{rewards.shape} and {costs.shape}.")
        self.rewards = rewards
        self.costs = costs
        self.rtg = device_tensor(returns_to_go(rewards, self.episode_starts), self.device)
        self.ctg = device_tensor(returns_to_go(costs, self.episode_starts), self.device)
        self.cost_labels = torch.as_tensor(costs > 0, device=self.device, dtype=torch.long)

    def episode_returns(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-episode reward and cost returns of the current per-step values."""
        first = self.episode_starts[:-1]
        return self.rtg[first].cpu().numpy(), self.ctg[first].cpu().numpy()

    def state_dict(self) -> dict[str, Any]:
        """The random state and the per-step rewards/costs in use."""
        return {"torch": self._generator.get_state(),
                "rewards": torch.as_tensor(self.rewards), "costs": torch.as_tensor(self.costs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``."""
        self._generator.set_state(state["torch"])
        self.set_returns(state["rewards"].numpy(), state["costs"].numpy())

    def __len__(self) -> int:
        return int(self.obs.shape[0])

    def sample(self) -> dict[str, torch.Tensor]:
        """``batch_size`` windows: ``rtg``, ``ctg``, ``timesteps``, ``cost_labels``, ``mask``
        ``(B, K)``; ``obs`` ``(B, K, observation_dim)``; ``act`` ``(B, K, action_dim)``
        (unscaled)."""
        first = torch.randint(len(self), (self.batch_size,), generator=self._generator,
                              device=self.device)
        rows = first[:, None] + self._offsets[None, :]
        mask = rows < self._ends[first][:, None]
        rows = torch.where(mask, rows, first[:, None])  # padding reads a real row, then zeroed
        keep = mask.to(torch.float32)
        return {
            "rtg": self.rtg[rows] * keep, "ctg": self.ctg[rows] * keep,
            "obs": self.obs[rows] * keep[..., None], "act": self.act[rows] * keep[..., None],
            "timesteps": self._timestep[rows] * mask, "cost_labels": self.cost_labels[rows] * mask,
            "mask": mask,
        }
