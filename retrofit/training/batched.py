"""Batched runs: several runs of one method (each its own trainer: seed, data, π_ref) trained as
one vectorised model through the one loop of :meth:`BaseTrainer.fit`.

Each member is an ordinary trainer built as for a single run (``PrefineTrainer(policy, config,
seed=s)``); its samplers, reference and seed are its own. The members' policy modules (one
architecture) are stacked along a leading run axis (:class:`StackedModules`, from
``torch.func.stack_module_state``) and one ``torch.func.vmap`` of ``functional_call`` evaluates
them all, so every layer is one batched matmul; one Adam steps the stacked parameters (Adam is
elementwise: the same update as one optimiser per run). A method says how one batched step goes
(:meth:`BatchedTrainer.batched_update`); everything else is the single run's:

- step counting (``steps_done`` 1 … N), timing, the progress bar, SIGINT/SIGTERM;
- metrics: every metric is a vector with one entry per run, and :class:`RunLoggers` hands each
  run its own entries, so each run's logger gets what its single run would log;
- the :class:`~retrofit.training.guard.FiniteGuard`, which names the run whose loss is not finite;
- callbacks, one per run: ``callbacks[i](step, member_i)`` every ``callback_every`` steps, off
  the clock, with the member's policy holding the run's current weights and its ``steps_done``
  and ``train_wall_clock_s`` the batch's; the batch stops when any callback returns True (the
  runs share one loop);
- checkpoints and resume: one checkpoint for the batch (stacked weights, optimiser, every
  member's samplers, the global random states), and a resume refuses a changed batch (the
  method, a setting, a seed, a run's data or starting policy, the number of runs) as
  :meth:`BaseTrainer.load_resumable` refuses a changed run;
- the end: the final weights of each run are written back into its member's policy.

Use :meth:`BatchedTrainer.fit_runs` (one data tuple, logger and callback per run); it returns
one trained adapter per run, in evaluation mode.
"""

from __future__ import annotations

import copy
import hashlib
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from retrofit.adapters.base import PolicyAdapter
from retrofit.errors import ConfigError
from retrofit.metrics_log import MetricsLogger
from retrofit.training.checkpoint import capture, restore
from retrofit.training.config import TrainerConfig
from retrofit.training.guard import FiniteGuard
from retrofit.training.loop import Callback, Update
from retrofit.training.trainer import BaseTrainer, Stage


class StackedModules(nn.Module):
    """``M`` modules of one architecture as stacked parameters (leading axis: the run).

    ``forward(obs)`` takes ``(M, B, ...)`` inputs and returns the modules' outputs stacked the
    same way (one vmapped ``functional_call``). Buffers (observation standardiser, action box)
    are stacked too but not trained, so they are not part of ``state_dict``.
    """

    def __init__(self, modules: Sequence[nn.Module]) -> None:
        super().__init__()
        params, buffers = stack_module_state(list(modules))  # type: ignore[arg-type]
        self.names = list(params)
        self.weights = nn.ParameterList(
            nn.Parameter(params[name].detach().clone(), requires_grad=params[name].requires_grad)
            for name in self.names)
        self.frozen = {name: value.detach() for name, value in buffers.items()}
        self.skeleton = (copy.deepcopy(modules[0]).to("meta"),)  # a tuple: not a submodule

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Every run's module on its own inputs ``obs[i]``: outputs stacked on the run axis."""
        def one(params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
                x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return tuple(functional_call(self.skeleton[0], (params, buffers), (x,)))

        params = dict(zip(self.names, self.weights, strict=True))
        return vmap(one)(params, self.frozen, obs)

    def member(self, index: int) -> dict[str, torch.Tensor]:
        """Run ``index``'s parameters as a (partial) state dict of the original module."""
        return {name: w[index].detach().clone() for name, w in zip(self.names, self.weights,
                                                                   strict=True)}

    def write_to(self, modules: Sequence[nn.Module]) -> None:
        """Copy each run's parameters into its module (in place; buffers untouched)."""
        for index, module in enumerate(modules):
            module.load_state_dict(self.member(index), strict=False)


class RunLoggers:
    """One logger per run behind the one logger the loop writes to: entry ``i`` of every metric
    goes to ``loggers[i]``; ``write_params`` gives each its own seed."""

    def __init__(self, loggers: Sequence[MetricsLogger], seeds: Sequence[int]) -> None:
        self.loggers = list(loggers)
        self.seeds = list(seeds)

    def log(self, step: int, metrics: dict[str, torch.Tensor]) -> None:
        """Entry ``i`` of each metric to ``loggers[i]`` (a scalar metric to every logger)."""
        for index, logger in enumerate(self.loggers):
            logger.log(step, {k: v[index] if v.dim() else v for k, v in metrics.items()})

    def write_params(self, params: dict[str, Any]) -> None:
        """The settings to each logger that records them, with its run's seed."""
        for logger, seed in zip(self.loggers, self.seeds, strict=True):
            write = getattr(logger, "write_params", None)
            if write is not None:
                write({**params, "seed": seed})

    def flush(self) -> None:
        """Flush every logger that buffers."""
        for logger in self.loggers:
            flush = getattr(logger, "flush", None)
            if flush is not None:
                flush()

    def close(self) -> None:
        """Close every logger."""
        for logger in self.loggers:
            logger.close()


class RunGenerators:
    """One ``torch.Generator`` per run, saved and restored with the batch's checkpoints."""

    def __init__(self, generators: Sequence[torch.Generator]) -> None:
        self.generators = list(generators)

    def state_dict(self) -> dict[str, Any]:
        """Each generator's state, in run order."""
        return {"states": [g.get_state() for g in self.generators]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Set each generator to its saved state."""
        for generator, saved in zip(self.generators, state["states"], strict=True):
            generator.set_state(saved)


class MemberStates:
    """The members' own state (samplers, generators; not their untrained policies, references
    and optimisers, which the batch replaces), saved and restored with the batch's checkpoints."""

    def __init__(self, members: Sequence[BaseTrainer]) -> None:
        self.members = list(members)

    def state_dict(self) -> dict[str, Any]:
        """Each member's captured state (``retrofit.training.checkpoint.capture``)."""
        return {"members": [
            {name: value for name, value in capture(member).items()
             if not isinstance(getattr(member, name), PolicyAdapter | torch.optim.Optimizer)}
            for member in self.members]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore each member's captured state."""
        for member, saved in zip(self.members, state["members"], strict=True):
            restore(member, saved)


class BatchedTrainer(BaseTrainer):
    """Trains ``members`` (trainers of one class and config, built as for single runs) as one
    batched model; a method's subclass implements :meth:`batched_update` (and builds its
    optimiser in ``setup`` after calling this class's)."""

    config_class = TrainerConfig
    policy: StackedModules  # type: ignore[assignment]

    def __init__(self, members: Sequence[BaseTrainer]) -> None:
        members = list(members)
        if not members:
            raise ConfigError("batched runs need at least one run (member trainer).")
        first = members[0]
        for index, member in enumerate(members[1:], start=1):
            if type(member) is not type(first) or member.config != first.config:
                raise ConfigError(
                    f"batched run {index}: every run needs the same trainer class and config "
                    f"({type(first).__name__}, {first.config}); got {type(member).__name__}, "
                    f"{member.config}. Train runs with other settings in another batch."
                )
            if member.device != first.device:
                raise ConfigError(f"batched run {index} is on {member.device}, run 0 on "
                                  f"{first.device}: build every run with the same device.")
        self.members = members
        self.run_names = [f"run{i} (seed {m.seed})" for i, m in enumerate(members)]
        super().__init__(first.policy, first.config, device=first.device, seed=first.seed)

    # ------------------------------------------------------------------ set-up
    def setup(self, policy: PolicyAdapter, **kwargs: Any) -> None:
        """Stack the members' policy modules (``self.policy``); keep the members' state."""
        modules = []
        for index, member in enumerate(self.members):
            module = getattr(member.policy, "module", None)
            if not isinstance(module, nn.Module):
                raise ConfigError(
                    f"batched run {index}: its policy ({type(member.policy).__name__}) has no "
                    "torch module to stack; train it with a separate run.")
            modules.append(module)
        try:
            self.policy = StackedModules(modules)
        except RuntimeError as exc:  # stack_module_state: shapes differ
            raise ConfigError(f"batched runs need one policy architecture: {exc}") from exc
        self.member_states = MemberStates(self.members)

    @abstractmethod
    def batched_update(self, index: int, stages: list[Stage]) -> Update:
        """One step of stage ``index`` for every run at once; ``stages`` are the members' own
        stages (their samplers are built). Returns metrics as vectors, one entry per run."""

    # ------------------------------------------------------------------ the template's parts
    def registered_name(self) -> str:
        """The members' method name, marked batched (e.g. ``'prefine (batched)'``)."""
        return f"{self.members[0].registered_name()} (batched)"

    def check_data(self, *data: Any) -> None:
        """Each run's data is checked as its single run's (one data tuple per run)."""
        self._check_count("data tuples", len(data))
        for member, run_data in zip(self.members, data, strict=True):
            member.check_data(*run_data)
        self._checked_data = data

    def stages(self, *data: Any, steps: int) -> list[Stage]:
        """The members' stages, each run as one batched stage."""
        self._check_count("data tuples", len(data))
        plans = [m.stages(*d, steps=steps) for m, d in zip(self.members, data, strict=True)]
        shape = [(s.name, s.steps, s.callbacks) for s in plans[0]]
        if any([(s.name, s.steps, s.callbacks) for s in plan] != shape for plan in plans):
            raise ConfigError("batched runs need the same stages in every run; train these "
                              "runs separately.")
        out = []
        for index, (name, length, callbacks) in enumerate(shape):
            parts = [plan[index] for plan in plans]
            prepares = [p.prepare for p in parts if p.prepare is not None]

            def prepare(prepares: list[Any] = prepares) -> None:
                for step in prepares:
                    step()

            out.append(Stage(f"{name} (batched ×{len(parts)})", length,
                             self.batched_update(index, parts),
                             prepare=prepare if prepares else None, callbacks=callbacks))
        return out

    def run_record(self, *data: Any, steps: int) -> dict[str, Any]:
        """The single runs' records in one: the seeds listed, the starting policies' and the
        data's fingerprints hashed together in run order."""
        self._check_count("data tuples", len(data))
        records = [m.run_record(*d, steps=steps) for m, d in zip(self.members, data, strict=True)]

        def joined(key: str) -> str:
            return hashlib.sha256("".join(str(r[key]) for r in records).encode()).hexdigest()

        return {"method": self.registered_name(), "seed": [r["seed"] for r in records],
                "steps": steps, "hyperparameters": self.config.recorded_settings(),
                "policy": joined("policy"), "data": joined("data")}

    def finite_guard(self) -> FiniteGuard:
        """A guard that names the run (and its seed) whose loss is not finite."""
        return FiniteGuard(self.device, members=self.run_names)

    def finish(self) -> None:
        """The members' policies take their runs' final weights (see :meth:`sync_members`)."""
        self.sync_members()

    def sync_members(self) -> None:
        """Write each run's current weights, ``steps_done`` and ``train_wall_clock_s`` into its
        member (before callbacks and at the end of a fit)."""
        self.policy.write_to([m.policy.module for m in self.members])  # type: ignore[attr-defined]
        for member in self.members:
            member.steps_done = self.steps_done
            member.train_wall_clock_s = self.train_wall_clock_s

    def _named_policy_parameters(self) -> Iterator[tuple[str, torch.Tensor]]:
        for name, weight in zip(self.policy.names, self.policy.weights, strict=True):
            for index, run in enumerate(self.run_names):
                yield f"{run} {name}", weight[index]

    def _check_count(self, what: str, count: int) -> None:
        if count != len(self.members):
            raise ConfigError(f"batched runs: got {count} {what} for {len(self.members)} runs "
                              "(one per run).")

    # ------------------------------------------------------------------ the entry point
    def fit_runs(
        self,
        data: Sequence[Sequence[Any]],
        *,
        steps: int | None = None,
        loggers: Sequence[MetricsLogger] | None = None,
        progress: bool = True,
        callbacks: Sequence[Callback] | None = None,
        callback_every: int = 0,
        checkpoint_dir: str | Path | None = None,
        checkpoint_every: int = 0,
        resume: bool = False,
    ) -> list[PolicyAdapter]:
        """Train every run; return each run's trained adapter (its member's policy, eval mode).

        ``data[i]`` is run ``i``'s ``fit`` data (e.g. ``(preferred, nonpreferred)``);
        ``loggers[i]`` gets run ``i``'s metrics each step; ``callbacks[i](step, member_i)`` runs
        every ``callback_every`` steps (module docstring). ``checkpoint_dir``,
        ``checkpoint_every`` and ``resume`` are :meth:`BaseTrainer.fit`'s, for the batch.
        """
        runs = tuple(tuple(d) for d in data)
        self._check_count("data tuples", len(runs))
        if loggers is not None:
            self._check_count("loggers", len(loggers))
        if callbacks is not None:
            self._check_count("callbacks", len(callbacks))
        logger = (RunLoggers(loggers, [m.seed for m in self.members])
                  if loggers is not None else None)
        callback = self._each_run(callbacks) if callbacks is not None else None
        self.fit(*runs, steps=steps, logger=logger, progress=progress, callback=callback,
                 callback_every=callback_every, checkpoint_dir=checkpoint_dir,
                 checkpoint_every=checkpoint_every, resume=resume)
        out = []
        for member in self.members:
            member.policy.train(False)
            out.append(member.policy)
        return out

    def _each_run(self, callbacks: Sequence[Callback]) -> Callback:
        def each_run(step: int, trainer: Any) -> bool:
            self.sync_members()
            stop = False
            for member, callback in zip(self.members, callbacks, strict=True):
                stop = bool(callback(step, member)) or stop
            return stop

        return each_run
