"""Many PREFINE runs in one process as one batched model (seeds × cost thresholds of a sweep).

A sweep trains the same reference on several (D_p, D_np) splits (one per cost threshold κ) with
several seeds. Each run alone multiplies small matrices (batch 512 × 256 hidden units); here the
``M`` runs' parameters are stacked along a leading axis (``torch.func.stack_module_state``) and
one ``torch.func.vmap`` of ``functional_call`` evaluates all of them, so every layer is one
batched matmul over ``M`` runs, and one fused Adam steps all stacked parameters (Adam is
elementwise, so this is the same update as ``M`` separate optimisers).

Each member keeps exactly what a separate ``PrefineTrainer(policy, config, seed=seed)`` run has:
its own ``PairedBatcher`` (same seed, same minibatch indices), its own precomputed reference
table, and its own counterfactual noise ``ε`` drawn from a generator seeded as the separate run's
global generator is. The result equals separate runs up to float rounding of batched vs single
matmuls (``tests/test_prefine_batched.py``). Only ``sampling="transitions"`` (every member has
the same batch shape) and references whose density is a closed form of per-state parameters
(retrofit's Gaussian policies: ``ParametricAdapter``) are supported; anything else raises.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.func import functional_call, stack_module_state, vmap

from retrofit.adapters.base import PolicyAdapter
from retrofit.adapters.module_adapter import ParametricAdapter
from retrofit.errors import ConfigError
from retrofit.losses.prefine import PairLogProbs, prefine_loss
from retrofit.methods.prefine import PrefineConfig, PrefineTrainer
from retrofit.metrics_log import MetricsLogger
from retrofit.training.guard import FiniteGuard, check_parameters


@dataclass(frozen=True)
class PrefineRun:
    """One member of a batched sweep: its preference split and its seed."""

    preferred: Any
    nonpreferred: Any
    seed: int


def fit_prefine_batched(
    reference: PolicyAdapter,
    runs: Sequence[PrefineRun],
    config: PrefineConfig,
    *,
    steps: int | None = None,
    device: str | torch.device = "auto",
    loggers: Sequence[MetricsLogger] | None = None,
) -> list[PolicyAdapter]:
    """Fine-tune ``reference`` once per run, all runs as one batched model; one adapter each.

    ``config`` is used as given (resolve its domain preset first, e.g.
    ``config.resolved("bullet")``); ``loggers``, one per run, receive each run's metrics every
    step. Raises ``ConfigError`` for what the batched path cannot do, ``DataError`` for bad data
    (each run is checked as a separate run would be, before any step), ``TrainingError`` if a
    run's loss is not finite (the project's ``FiniteGuard``: each step on CPU, in batches on an
    accelerator, naming the run and its seed).
    """
    if not runs:
        raise ConfigError("fit_prefine_batched needs at least one PrefineRun.")
    if config.sampling != "transitions":
        raise ConfigError(
            f"sampling={config.sampling!r}: batched runs need sampling='transitions' (every "
            "run the same batch shape); train trajectory-sampled runs separately."
        )
    if config.weight_average_decay > 0:
        raise ConfigError(
            f"weight_average_decay={config.weight_average_decay}: batched runs return the last "
            "step's weights; train averaged runs separately (PrefineTrainer)."
        )
    if loggers is not None and len(loggers) != len(runs):
        raise ConfigError(f"loggers: got {len(loggers)} for {len(runs)} runs (one per run).")
    steps = config.steps if steps is None else steps
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ConfigError(f"steps={steps!r} must be an integer >= 0.")

    trainers = []
    for run in runs:
        trainer = PrefineTrainer(reference, config, device=device, seed=run.seed)
        if not isinstance(trainer.policy, ParametricAdapter):
            raise ConfigError(
                f"batched PREFINE needs a reference whose density is a closed form of per-state "
                f"parameters (retrofit's Gaussian policies); got {type(trainer.policy).__name__}."
                " Train this policy with separate runs."
            )
        trainer.check_data(run.preferred, run.nonpreferred)
        stage = trainer.stages(run.preferred, run.nonpreferred, steps=steps)[0]
        if stage.prepare is not None:
            stage.prepare()
        trainers.append(trainer)
        first = trainers[0]
    dev = first.device
    modules = [t.policy.module for t in trainers]
    params, buffers = stack_module_state(modules)
    skeleton = copy.deepcopy(modules[0]).to("meta")
    names = list(params)
    optimizer = first.adam(list(params.values()), config.learning_rate)
    generators = [torch.Generator(device=dev).manual_seed(run.seed) for run in runs]
    beta, sft_weight, dpo_weight = config.beta, config.sft_weight, config.dpo_weight
    assert beta is not None and sft_weight is not None

    ref = first.reference
    tables = [t._ref_table for t in trainers]

    module = first.policy.module  # its buffers (action box) are every run's
    density = getattr(module, first.policy.density)

    def forward(p: dict, b: dict, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(functional_call(skeleton, (p, b), (obs,)))

    def loss_of(logp_data: torch.Tensor, logp_sampled: torch.Tensor, ref_data: torch.Tensor,
                ref_sampled: torch.Tensor, n_pref: int) -> tuple[torch.Tensor, dict]:
        pref, non = slice(0, n_pref), slice(n_pref, None)
        preferred = PairLogProbs(logp_data[pref], logp_sampled[pref], ref_data[pref],
                                 ref_sampled[pref])
        nonpreferred = PairLogProbs(logp_sampled[non], logp_data[non], ref_sampled[non],
                                    ref_data[non])
        return prefine_loss(preferred, nonpreferred, beta, sft_weight, dpo_weight)

    # The forward pass is vmapped (one batched matmul per layer); densities broadcast over the
    # leading run axis as they are (elementwise, and log_ndtr has no vmap rule); the loss's
    # per-run means are vmapped again so each run's loss is exactly its own.
    forward_all = vmap(forward, in_dims=(0, 0, 0))
    losses_of = vmap(loss_of, in_dims=(0, 0, 0, 0, None))
    guard = FiniteGuard(dev)  # every step on CPU; batched host checks on an accelerator
    names_of_runs = [f"run{i} (seed {run.seed})" for i, run in enumerate(runs)]
    for step in range(steps):
        rows = []
        n_pref = 0
        for trainer in trainers:
            index, n_pref = trainer.batcher.sample_index()
            rows.append(index)
        obs = torch.stack([t.batcher.obs[r] for t, r in zip(trainers, rows, strict=True)])
        act = torch.stack([t.batcher.act[r] for t, r in zip(trainers, rows, strict=True)])
        noise = torch.stack([
            torch.randn(act.shape[1:], generator=g, device=dev, dtype=act.dtype)
            for g in generators
        ])
        with torch.no_grad():
            if tables[0] is not None:
                ref_params = tuple(
                    torch.stack([table[k][r] for table, r in zip(tables, rows, strict=True)])
                    for k in range(len(tables[0]))
                )
            else:  # one reference forward over every run's states
                flat = ref.distribution_params(obs.flatten(0, 1))
                ref_params = tuple(t.unflatten(0, obs.shape[:2]) for t in flat)
        dist = forward_all(params, buffers, obs)
        sampled, logp_sampled = module.sample_from(*dist, noise=noise)
        logp_data = density(*dist, act)
        with torch.no_grad():
            ref_data, ref_sampled = ref.log_prob_from(ref_params, torch.stack([act, sampled]))
        losses, metrics = losses_of(logp_data, logp_sampled, ref_data, ref_sampled, n_pref)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        done = step + 1  # steps are counted from 1, as the training loop's steps_done
        guard.observe(done, {f"loss/{name}": losses[i] for i, name in enumerate(names_of_runs)},
                      "batched prefine")
        optimizer.step()
        if loggers is not None:
            for i, logger in enumerate(loggers):
                logger.log(done, {k: v[i] for k, v in metrics.items()})
    guard.check("batched prefine")
    if loggers is not None:
        for logger in loggers:
            logger.close()
    out = []
    for i, trainer in enumerate(trainers):
        state = {name: params[name][i].detach().clone() for name in names}
        trainer.policy.module.load_state_dict(state, strict=False)
        trainer.policy.train(False)
        trainer.steps_done = steps
        check_parameters(trainer._named_policy_parameters(), f"batched run {i} after {steps}")
        out.append(trainer.policy)
    return out

