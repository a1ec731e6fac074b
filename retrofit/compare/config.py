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
# π_ref's families in a comparison, by ``BCConfig.policy``'s names (one name per family):
# the clipped Gaussian that ``reference_std`` shapes, the tanh-Gaussian, BCQ's VAE.
REFERENCE_POLICIES = ("clipped-gaussian", "tanh-gaussian", "vae")
# The spelling before these names: the Gaussian, clipped with ``reference_std`` or tanh with None.
LEGACY_GAUSSIAN = "gaussian"
# PREFINE A.4's network size ([256, 256]): the VAE π_ref's encoder and decoder widths.
PAPER_NETWORK = (256, 256)
DEFAULT_REFERENCE_STD = 0.2

TANH_REFERENCE_HINT = (
    " This folder's π_ref is the tanh-Gaussian (the default before issue 25): resume it with "
    "--reference-policy tanh-gaussian (CompareConfig(reference_policy='tanh-gaussian'))."
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
    reference_policy: π_ref's family, by ``BCConfig.policy``'s names: "clipped-gaussian"
        (default; spread ``reference_std``), "tanh-gaussian" (the default before issue 25) or
        "vae" — BCQ's conditional VAE (``retrofit.policies.vae``; PREFINE §5.1's reference
        class) with PREFINE A.4's [256, 256] network and BCQ's other defaults (``VAEConfig``).
        ``reference_class`` is the family a config trains. Deprecated spellings, still read
        (a ``FutureWarning`` says what to write): "gaussian" (the clipped Gaussian, or the
        tanh-Gaussian with ``reference_std=None``), and ``reference_std=None`` for the
        tanh-Gaussian.
    reference_std: the clipped Gaussian's fixed spread in half-ranges (0.2, the default of
        ``BCConfig``, the demo and the suite, whose PREFINE log-likelihoods stay bounded;
        docs/prefine.md); it shapes no other family and must stay at its default for them.
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
    reference_policy: str = "clipped-gaussian"
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
        self.check_reference()
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

    def check_reference(self) -> None:
        """A known ``reference_policy``; ``reference_std`` a number > 0 for the clipped
        Gaussian and at its default for the other families; a ``FutureWarning`` for the
        deprecated spellings (module docstring of the fields)."""
        import warnings

        std, policy = self.reference_std, self.reference_policy
        if std is not None and std <= 0:
            raise ConfigError(f"reference_std={std!r} must be a number > 0 (half-range units, "
                              "e.g. 0.2); for the tanh-Gaussian π_ref say "
                              "reference_policy='tanh-gaussian' (--reference-policy "
                              "tanh-gaussian).")
        if policy not in (*REFERENCE_POLICIES, LEGACY_GAUSSIAN):
            raise ConfigError(f"reference_policy={policy!r}: use one of "
                              f"{', '.join(REFERENCE_POLICIES)}.")
        if policy in ("tanh-gaussian", "vae") and std not in (DEFAULT_REFERENCE_STD, None):
            raise ConfigError(f"reference_std={std!r} shapes the clipped Gaussian π_ref only; "
                              f"with reference_policy={policy!r} leave it at its default "
                              f"({DEFAULT_REFERENCE_STD}).")
        if policy == "vae" and std is None:
            raise ConfigError("reference_std=None: with reference_policy='vae' leave it at its "
                              f"default ({DEFAULT_REFERENCE_STD}).")
        if policy == LEGACY_GAUSSIAN:
            warnings.warn(f"reference_policy='gaussian' is deprecated: say "
                          f"{self.reference_class!r}.", FutureWarning, stacklevel=6)
        elif policy == "clipped-gaussian" and std is None:
            warnings.warn("reference_std=None for the tanh-Gaussian π_ref is deprecated: say "
                          "reference_policy='tanh-gaussian' (--reference-policy "
                          "tanh-gaussian).", FutureWarning, stacklevel=6)

    @property
    def reference_class(self) -> str:
        """The family π_ref is trained as, by ``BCConfig.policy``'s names (the deprecated
        spellings resolved)."""
        if self.reference_policy in ("tanh-gaussian", "vae"):
            return self.reference_policy
        return "tanh-gaussian" if self.reference_std is None else "clipped-gaussian"

    def named_reference(self) -> CompareConfig:
        """This config with π_ref's family spelled by its name (``reference_class``; the spread
        at its default for the families it does not shape): the same π_ref, folder settings and
        records, without the deprecated spellings (what ``run_compare`` runs and stores)."""
        import dataclasses

        family = self.reference_class
        if family == self.reference_policy and self.reference_std is not None:
            return self
        std = self.reference_std if family == "clipped-gaussian" else DEFAULT_REFERENCE_STD
        return dataclasses.replace(self, reference_policy=family, reference_std=std)

    @property
    def reference_spread(self) -> float | None:
        """``reference_std`` as π_ref's record and the folder's settings store it: the clipped
        Gaussian's spread, None for the tanh-Gaussian (how folders made before the family names
        store it), the default for the VAE (likewise)."""
        return {"clipped-gaussian": self.reference_std, "tanh-gaussian": None,
                "vae": DEFAULT_REFERENCE_STD}[self.reference_class]

    def reference_family(self) -> dict[str, Any]:
        """What names π_ref's family beyond ``reference_spread``, as the folder's settings and
        the π_ref record store it: empty for the two Gaussians (told apart by the spread, so
        folders made before the VAE option resume as they were), else ``reference_policy`` and
        any ``reference_kl_weight``."""
        return {
            **({"reference_policy": "vae"} if self.reference_class == "vae" else {}),
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
