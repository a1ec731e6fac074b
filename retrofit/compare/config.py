"""``CompareConfig``: one comparison's settings, validated at construction."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from retrofit.config_base import Config
from retrofit.data.splits import DEFAULT_TOP_FRACTION, NONPREFERRED_POOLS, check_top_fraction
from retrofit.errors import ConfigError

# The way back for a folder made before issue 25: appended where its π_ref is refused.
HALF_SAFE_HINT = (
    " This folder's D_p was drawn from the better half of SAFE (top_fraction 0.5, the default "
    "before amendment 6 of docs/protocol.md): resume it with --top-fraction 0.5 "
    "(CompareConfig(top_fraction=0.5))."
)
# π_ref's families in a comparison: the Gaussian that ``reference_std`` shapes, or BCQ's VAE.
REFERENCE_POLICIES = ("gaussian", "vae")
# PREFINE A.4's network size ([256, 256]): the VAE π_ref's encoder and decoder widths.
PAPER_NETWORK = (256, 256)
DEFAULT_REFERENCE_STD = 0.2

TANH_REFERENCE_HINT = (
    " This folder's π_ref is the tanh-Gaussian (reference_std None, the default before issue "
    "25): resume it with --reference-std 0 (CompareConfig(reference_std=None))."
)


@dataclass(frozen=True)
class CompareConfig(Config):
    """One comparison; every method gets the same data, iterations and (if set) batch size.

    task: DSRL task (``BallRun`` or ``OfflineBallRun-v0``).
    methods: registered method names (``retrofit.methods.registry.available_methods()``).
    out: output folder (created; finished cells in it are reused).
    dataset: DSRL-format HDF5 file (None: the dataset shipped for the task,
        ``retrofit.data.shipped.default_dataset_path``; ``"dsrl"``: DSRL's own file for the
        task, downloaded if needed, ``from_dsrl``).
    cost_thresholds: κ values (None: the task's constraint-variation set).
    seeds: seeds; each seed draws its own π_ref, D_p/D_np split and training randomness.
    steps: training iterations of every method (SafeDICE's discriminator pretraining adds
        steps/10 unless overridden, the paper's proportion).
    batch_size: overrides every method's ``batch_size`` (None: each method's default; all equal
        512 state–action pairs per update: PREFINE/DPO/PPL 256 per side, the others 512).
    eval_episodes: final evaluation episodes per cell (OSRL 20; PREFINE 100).
    checkpoint_every: steps between off-the-clock checkpoint evaluations (None: steps/10; 0: none).
    checkpoint_episodes: episodes per checkpoint evaluation.
    safe_reward_fraction: a checkpoint counts as "safe" when its normalised cost is ≤ 1 and its
        normalised reward ≥ this fraction of π_ref's (0.8).
    bc_steps: BC steps of π_ref. n_preferred / n_nonpreferred: N_p / N_np of the split.
    nonpreferred_pool: which end of UNSAFE (by cost return) D_np is drawn from: "highest-cost"
        (default) or "lowest-cost" (``retrofit.data.splits.preference_split_indices``).
    top_fraction: the share of SAFE episodes, best reward first, that D_p is drawn from (0:
        exactly the n_preferred best, ``retrofit.data.splits.DEFAULT_TOP_FRACTION``, chosen by
        docs/protocol.md amendment 6; 0.5: the better half, the default before).
    reference_std: π_ref a clipped Gaussian with this fixed spread in half-ranges (0.2, the
        default of ``BCConfig``, the demo and the suite, whose PREFINE log-likelihoods stay
        bounded; docs/prefine.md); None: a tanh-Gaussian π_ref (the default before issue 25;
        ``retrofit compare --reference-std 0``).
    reference_policy: π_ref's family: "gaussian" (default; the one ``reference_std`` shapes) or
        "vae" — BCQ's conditional VAE (``retrofit.policies.vae``; PREFINE §5.1's reference
        class) with PREFINE A.4's [256, 256] network and BCQ's other defaults
        (``VAEConfig``); ``reference_std`` does not apply to it and must stay at its default.
    reference_kl_weight: the VAE π_ref's β_KL (None: BCQ's 0.5; docs/protocol.md amendment 11
        tries 0.05, with which the latent is not collapsed on our data); VAE only.
    device: "auto" | "cpu" | "cuda". threads: torch CPU threads per cell.
    isolate: run each cell in a fresh process (own peak RSS); False runs them in this process.
    executor: "local" (this machine; ``workers`` cells at a time) or "ray" (a Ray cluster:
        each cell a Ray task with ``threads`` CPUs and, with device "cuda", one GPU; results
        come back to this process, which writes the cell files: no shared filesystem needed).
    workers: cells run at once by the local executor (1: one after another), or by a local
        Ray instance (``ray_address`` None), which gets ``workers × threads`` CPUs.
    ray_address: the cluster to join ("auto": the one started with ``ray start``; None: a
        local Ray instance with ``workers × threads`` CPUs).
    overrides: method name -> {config field: value} (e.g. {"cpq": {"num_q": 2}}).
    progress: tqdm bars.
    batched: train a PREFINE-family method's cells of one κ across seeds as one batched run
        (``retrofit.compare.batched``; equal to separate cells up to float rounding, the same
        cell files and rows). Off by default; cells that cannot be batched (other methods,
        ``sampling="trajectories"``, a cell resuming from its own checkpoint, the Ray executor)
        train separately, and the log says why.
    """

    task: str
    methods: tuple[str, ...]
    out: Path
    dataset: str | None = None
    cost_thresholds: tuple[float, ...] | None = None
    seeds: tuple[int, ...] = (0,)
    steps: int = 2_000
    batch_size: int | None = None
    eval_episodes: int = 20
    checkpoint_every: int | None = None
    checkpoint_episodes: int = 5
    safe_reward_fraction: float = 0.8
    bc_steps: int = 20_000
    n_preferred: int = 100
    n_nonpreferred: int = 20
    nonpreferred_pool: str = "highest-cost"
    top_fraction: float = DEFAULT_TOP_FRACTION
    reference_std: float | None = DEFAULT_REFERENCE_STD
    reference_policy: str = "gaussian"
    reference_kl_weight: float | None = None
    device: str = "auto"
    threads: int = 1
    isolate: bool = True
    executor: Literal["local", "ray"] = "local"
    workers: int = 1
    ray_address: str | None = None
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    progress: bool = False
    batched: bool = False

    def check(self) -> None:
        """Counts >= 1, seeds and ``checkpoint_every`` >= 0, a known D_np pool, a positive
        ``reference_std``, a known ``reference_policy``, a share >= 0 and valid cost thresholds."""
        self.require_at_least(1, "steps", "eval_episodes", "checkpoint_episodes", "bc_steps",
                              "n_preferred", "n_nonpreferred", "threads", "workers",
                              "batch_size")
        if self.nonpreferred_pool not in NONPREFERRED_POOLS:
            raise ConfigError(f"nonpreferred_pool={self.nonpreferred_pool!r}: use one of "
                              f"{', '.join(NONPREFERRED_POOLS)}.")
        check_top_fraction(self.top_fraction)
        std = self.reference_std
        if std is not None and std <= 0:
            raise ConfigError(f"reference_std={std!r} must be a number > 0 (half-range units, "
                              "e.g. 0.2) or None for the tanh-Gaussian π_ref (on the command "
                              "line: --reference-std 0).")
        if self.reference_policy not in REFERENCE_POLICIES:
            raise ConfigError(f"reference_policy={self.reference_policy!r}: use one of "
                              f"{', '.join(REFERENCE_POLICIES)}.")
        if self.reference_policy == "vae" and std != DEFAULT_REFERENCE_STD:
            raise ConfigError(f"reference_std={std!r} shapes the Gaussian π_ref only; with "
                              "reference_policy='vae' leave it at its default "
                              f"({DEFAULT_REFERENCE_STD}).")
        weight = self.reference_kl_weight
        if weight is not None and (self.reference_policy != "vae" or not weight >= 0):
            raise ConfigError(f"reference_kl_weight={weight!r}: the VAE π_ref's β_KL, a number "
                              ">= 0 with reference_policy='vae' (None: BCQ's 0.5).")
        self.require_at_least(0, "checkpoint_every")
        for seed in self.seeds:
            if seed < 0:
                raise ConfigError(f"seeds={seed!r} must be an integer >= 0.")
        if self.safe_reward_fraction < 0:
            raise ConfigError(
                f"safe_reward_fraction={self.safe_reward_fraction!r} must be a finite number "
                ">= 0 (a share of π_ref's normalised reward, e.g. 0.8)."
            )
        from retrofit.thresholds import check_cost_threshold

        for cost_threshold in self.cost_thresholds or ():
            check_cost_threshold(cost_threshold, "cost_thresholds")

    def reference_family(self) -> dict[str, Any]:
        """What names π_ref's family beyond ``reference_std``, as the folder's settings and the
        π_ref record store it: empty for the Gaussian (so folders made before the VAE option
        resume as they were), else ``reference_policy`` and any ``reference_kl_weight``."""
        return {
            **({"reference_policy": self.reference_policy}
               if self.reference_policy != "gaussian" else {}),
            **({"reference_kl_weight": self.reference_kl_weight}
               if self.reference_kl_weight is not None else {}),
        }

    def thresholds(self) -> tuple[float, ...]:
        """Deprecated name of :meth:`resolved_cost_thresholds`."""
        import warnings

        warnings.warn("CompareConfig.thresholds() is now resolved_cost_thresholds().",
                      DeprecationWarning, stacklevel=2)
        return self.resolved_cost_thresholds()

    def resolved_cost_thresholds(self) -> tuple[float, ...]:
        """The cost thresholds to run: ``cost_thresholds``, else the task's DSRL thresholds."""
        if self.cost_thresholds:
            return tuple(float(k) for k in self.cost_thresholds)
        from retrofit.tasks import task_info

        return task_info(self.task).cost_thresholds

    def every(self) -> int:
        """Checkpoint period in steps (0: no checkpoints)."""
        if self.checkpoint_every is None:
            return max(1, self.steps // 10)
        return self.checkpoint_every
