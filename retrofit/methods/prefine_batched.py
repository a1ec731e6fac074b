"""Many PREFINE runs in one process as one batched model (seeds × cost thresholds of a sweep).

A sweep trains a reference on several (D_p, D_np) splits (one per cost threshold κ) with several
seeds, each seed possibly with its own π_ref (``retrofit compare`` trains one per seed). Each run
alone multiplies small matrices (batch 512 × 256 hidden units); here the ``M`` runs go through
:mod:`retrofit.training.batched`: their parameters stacked along a leading axis, one
``torch.func.vmap`` of ``functional_call`` evaluating all of them (one batched matmul per layer)
and one fused Adam stepping all stacked parameters (Adam is elementwise, so this is the same
update as ``M`` separate optimisers), inside the training layer's one loop (step counting,
per-run metrics, finite guard, per-run callbacks, checkpoints and resume).

Each member is exactly a separate ``PrefineTrainer(reference, config, seed=seed)`` run: its own
``PairedBatcher`` (same seed, same minibatch indices), its own precomputed reference table
(:meth:`PrefineTrainer.reference_table`), and its own counterfactual noise ``ε`` drawn from a
generator seeded as the separate run's global generator is. With ``weight_average_decay`` > 0
the stacked weights are averaged (elementwise, as each run's own average). The result equals
separate runs up to float rounding of batched vs single matmuls (``tests/test_prefine_batched.py``).
Only ``sampling="transitions"`` (every member has the same batch shape), references whose
density is a closed form of per-state parameters (retrofit's Gaussian policies:
``ParametricAdapter``) with one action box, and runs with different references only with
``precompute_reference=True`` are supported; :func:`batching_refusal` says why not otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.func import vmap

from retrofit.adapters.base import PolicyAdapter
from retrofit.adapters.module_adapter import ParametricAdapter
from retrofit.errors import ConfigError
from retrofit.losses.prefine import PairLogProbs, prefine_loss
from retrofit.methods.prefine import PrefineConfig, PrefineTrainer
from retrofit.metrics_log import MetricsLogger
from retrofit.training.batched import BatchedTrainer, RunGenerators
from retrofit.training.loop import Callback, Update
from retrofit.training.run_record import policy_fingerprint
from retrofit.training.trainer import Stage
from retrofit.training.weight_average import WeightAverage


@dataclass(frozen=True)
class PrefineRun:
    """One member of a batched sweep: its preference split, its seed and (optionally) its own
    reference π_ref (None: the reference given to :func:`fit_prefine_batched`)."""

    preferred: Any
    nonpreferred: Any
    seed: int
    reference: PolicyAdapter | None = None


def batching_refusal(trainer_class: type, config: Any) -> str | None:
    """Why runs of ``trainer_class`` with ``config`` cannot be batched (None: they can, as far
    as the method and settings go; the policy class is checked when the batch is built)."""
    if not (isinstance(trainer_class, type) and issubclass(trainer_class, PrefineTrainer)):
        return (f"batched runs are PREFINE-family only (prefine, dpo, sft-only); "
                f"{trainer_class.__name__} trains separately")
    if getattr(config, "sampling", "transitions") != "transitions":
        return (f"sampling={config.sampling!r}: batched runs need sampling='transitions' (every "
                "run the same batch shape)")
    return None


class BatchedPrefineTrainer(BatchedTrainer):
    """PREFINE's step (``PrefineTrainer.update``, Eq. 9) for every member at once."""

    config_class = PrefineConfig
    config: PrefineConfig

    def setup(self, policy: PolicyAdapter, **kwargs: Any) -> None:
        """Check what batching needs, stack the policies, one Adam, the average, the noise."""
        first = self.members[0]
        reason = batching_refusal(type(first), first.config)
        if reason is not None:
            raise ConfigError(f"{reason}; train these runs separately.")
        for index, member in enumerate(self.members):
            if not isinstance(member.policy, ParametricAdapter):
                raise ConfigError(
                    f"batched PREFINE needs a reference whose density is a closed form of "
                    f"per-state parameters (retrofit's Gaussian policies); run {index} has "
                    f"{type(member.policy).__name__}. Train this policy with separate runs.")
            for name in ("action_low", "action_high"):
                if type(member.policy.module) is not type(first.policy.module) or \
                        not np.array_equal(getattr(member.policy, name),
                                           getattr(first.policy, name)):
                    raise ConfigError(
                        f"batched run {index}: its policy's class or {name} differs from run "
                        "0's; a batch holds one policy class and one action box.")
        if not self.config.precompute_reference and len(
                {policy_fingerprint(m.reference) for m in self.members}) > 1:
            raise ConfigError(
                "batched runs with different references need precompute_reference=True (each "
                "run's reference is then read from its own table); or batch runs that share one "
                "reference.")
        super().setup(policy, **kwargs)
        self.optimizer = self.adam(self.trainable_parameters(), self.config.learning_rate)
        self.weight_average = (
            WeightAverage(self.trainable_parameters(), self.config.weight_average_decay)
            .to(self.device) if self.config.weight_average_decay > 0 else None
        )
        self.noise = RunGenerators([torch.Generator(device=self.device).manual_seed(m.seed)
                                    for m in self.members])

    def batched_update(self, index: int, stages: list[Stage]) -> Update:
        """One PREFINE step of every run: each run's own minibatch, noise and reference."""
        members: list[PrefineTrainer] = self.members  # type: ignore[assignment]
        first = members[0]
        module = first.policy.module
        density = getattr(module, first.policy.density)  # type: ignore[attr-defined]
        reference = first.reference
        beta, sft_weight, dpo_weight = self.config.beta, self.config.sft_weight, \
            self.config.dpo_weight
        assert beta is not None and sft_weight is not None

        def loss_of(logp_data: torch.Tensor, logp_sampled: torch.Tensor,
                    ref_data: torch.Tensor, ref_sampled: torch.Tensor,
                    n_pref: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            pref, non = slice(0, n_pref), slice(n_pref, None)
            preferred = PairLogProbs(logp_data[pref], logp_sampled[pref], ref_data[pref],
                                     ref_sampled[pref])
            nonpreferred = PairLogProbs(logp_sampled[non], logp_data[non], ref_sampled[non],
                                        ref_data[non])
            return prefine_loss(preferred, nonpreferred, beta, sft_weight, dpo_weight)

        # Densities broadcast over the leading run axis as they are (elementwise, and log_ndtr
        # has no vmap rule); the loss's per-run means are vmapped so each run's loss is its own.
        losses_of = vmap(loss_of, in_dims=(0, 0, 0, 0, None))

        def update() -> dict[str, torch.Tensor]:
            rows = []
            n_pref = 0
            for member in members:
                drawn, n_pref = member.batcher.sample_index()
                rows.append(drawn)
            obs = torch.stack([m.batcher.obs[r] for m, r in zip(members, rows, strict=True)])
            act = torch.stack([m.batcher.act[r] for m, r in zip(members, rows, strict=True)])
            noise = torch.stack([
                torch.randn(act.shape[1:], generator=g, device=act.device, dtype=act.dtype)
                for g in self.noise.generators
            ])
            tables = [m.reference_table() for m in members]
            with torch.no_grad():
                if all(t is not None for t in tables):
                    ref_params = tuple(
                        torch.stack([t[k][r] for t, r in zip(tables, rows, strict=True)])  # type: ignore[index]
                        for k in range(len(tables[0]))  # type: ignore[arg-type]
                    )
                else:  # one shared reference: one forward over every run's states
                    flat = reference.distribution_params(  # type: ignore[attr-defined]
                        obs.flatten(0, 1))
                    ref_params = tuple(t.unflatten(0, obs.shape[:2]) for t in flat)
            dist = self.policy(obs)
            sampled, logp_sampled = module.sample_from(*dist, noise=noise)
            logp_data = density(*dist, act)
            with torch.no_grad():
                ref_data, ref_sampled = reference.log_prob_from(  # type: ignore[attr-defined]
                    ref_params, torch.stack([act, sampled]))
            losses, metrics = losses_of(logp_data, logp_sampled, ref_data, ref_sampled, n_pref)
            self.optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()
            self.optimizer.step()
            if self.weight_average is not None:
                self.weight_average.update(self.trainable_parameters())
            return metrics

        return update

    def finish(self) -> None:
        """The averaged weights (``weight_average_decay`` > 0) replace the last ones, then each
        member takes its run's."""
        if self.weight_average is not None:
            self.weight_average.copy_to(self.trainable_parameters())
        super().finish()


def fit_prefine_batched(
    reference: PolicyAdapter | None,
    runs: Sequence[PrefineRun],
    config: PrefineConfig,
    *,
    steps: int | None = None,
    device: str | torch.device = "auto",
    loggers: Sequence[MetricsLogger] | None = None,
    progress: bool = True,
    callbacks: Sequence[Callback] | None = None,
    callback_every: int = 0,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
) -> list[PolicyAdapter]:
    """Fine-tune a reference once per run, all runs as one batched model; one adapter each.

    Run ``i`` starts from ``runs[i].reference`` or else ``reference``. ``config`` is used as
    given (resolve its domain preset first, e.g. ``config.resolved("bullet")``). ``loggers``
    (one per run) get each run's metrics every step; ``callbacks[i](step, trainer_i)`` runs every
    ``callback_every`` steps with run ``i``'s ``PrefineTrainer`` holding its current weights;
    ``checkpoint_dir`` / ``checkpoint_every`` / ``resume`` checkpoint and resume the batch as
    :meth:`BaseTrainer.fit` does a run (:mod:`retrofit.training.batched`). Raises
    ``ConfigError`` for what the batched path cannot do, ``DataError`` for bad data (each run is
    checked as a separate run would be, before any step), ``TrainingError`` if a run's loss is
    not finite (naming the run and its seed).
    """
    if not runs:
        raise ConfigError("fit_prefine_batched needs at least one PrefineRun.")
    if config.sampling != "transitions":
        raise ConfigError(
            f"sampling={config.sampling!r}: batched runs need sampling='transitions' (every "
            "run the same batch shape); train trajectory-sampled runs separately."
        )
    if loggers is not None and len(loggers) != len(runs):
        raise ConfigError(f"loggers: got {len(loggers)} for {len(runs)} runs (one per run).")
    members = []
    for index, run in enumerate(runs):
        start = run.reference if run.reference is not None else reference
        if start is None:
            raise ConfigError(f"run {index} has no reference: give PrefineRun(reference=...) or "
                              "fit_prefine_batched(reference, ...).")
        members.append(PrefineTrainer(start, config, device=device, seed=run.seed))
    trainer = BatchedPrefineTrainer(members)
    return trainer.fit_runs(
        [(run.preferred, run.nonpreferred) for run in runs], steps=steps, loggers=loggers,
        progress=progress, callbacks=callbacks, callback_every=callback_every,
        checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every, resume=resume)
