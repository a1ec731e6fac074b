"""What data each method gets in a cell: its family's shape of the cell's D_p / D_np split (or
the whole dataset), and the config overrides the cell hands it."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from retrofit.compare.config import CompareConfig
from retrofit.errors import ConfigError


@dataclass(frozen=True)
class CellData:
    """What a cell's data builder can use: the full dataset and this cell's D_p / D_np split."""

    dataset: Any
    preferred: Any
    nonpreferred: Any
    cost_threshold: float
    seed: int


def _pairs(data: CellData) -> tuple[Any, ...]:
    return data.preferred, data.nonpreferred


def _union(data: CellData) -> Any:
    import numpy as np

    from retrofit.data.dataset import TrajectoryDataset
    from retrofit.data.validation import DSRL_KEYS

    p, n = data.preferred, data.nonpreferred
    return TrajectoryDataset(
        **{k: np.concatenate([getattr(p, k), getattr(n, k)]) for k in DSRL_KEYS},
        task=p.task, action_low=p.action_low, action_high=p.action_high,
    )


def _feedback(data: CellData) -> tuple[Any, ...]:
    from retrofit.feedback import synthesize

    accepted = inspect.signature(synthesize).parameters
    options = {"cost_threshold": data.cost_threshold, "seed": data.seed}
    return (synthesize(_union(data), **{k: v for k, v in options.items() if k in accepted}),)


# Each family of methods learns from one shape of data; every family is built from the same
# D_p / D_np trajectories (PREFINE §5.1: "we modify our datasets in the same way").
DATA_BUILDERS: dict[str, Callable[[CellData], tuple[Any, ...]]] = {
    "pairs": _pairs,  # (D_p, D_np): PREFINE, DPO, PPL, SafeDICE (union D_p ∪ D_np + labelled D_np)
    "transitions": _pairs,  # transitions of D_p ∪ D_np with rewards/costs: CPQ, BC-All, BC-Safe
    "feedback": _feedback,  # PreSa-style segment feedback synthesised from D_p ∪ D_np
}


def data_scope(method: str) -> str:
    """Which trajectories a method's cell gets: ``"split"`` (the cell's D_p / D_np, the default)
    or ``"dataset"`` (the whole dataset: ``bc-safe-full``, OSRL's BC-Safe)."""
    from retrofit.methods.registry import get_method

    return str(getattr(get_method(method).trainer, "data_scope", "split"))


def cell_data(method: str, cell: CellData) -> tuple[Any, ...]:
    """The positional data of ``fit`` for ``method`` in ``cell``."""
    if data_scope(method) == "dataset":
        return (cell.dataset,)
    return DATA_BUILDERS[data_kind(method)](cell)


def data_kind(method: str) -> str:
    """What a registered method learns from (its trainer's ``data_kind``)."""
    from retrofit.methods.registry import get_method

    return get_method(method).data_kind


def method_hyperparameters(method: str, config: CompareConfig, cost_threshold: float
                           ) -> dict[str, Any]:
    """Config overrides of one cell: shared batch size, the cost limit κ, no separate BC
    pretraining (PreSa's ``pretrain_steps``: π_ref is shared), then the user's overrides."""
    from retrofit.methods.registry import get_method

    _, config_cls = get_method(method).load()
    names = {f.name for f in dataclasses.fields(config_cls)}
    hyper: dict[str, Any] = {}
    if config.batch_size is not None and "batch_size" in names:
        hyper["batch_size"] = config.batch_size
    if "cost_threshold" in names:
        hyper["cost_threshold"] = cost_threshold
    if "pretrain_steps" in names:  # every retrofitting method starts from the same π_ref
        hyper["pretrain_steps"] = 0
    user = dict(config.overrides.get(method, {}))
    unknown = sorted(set(user) - names)
    if unknown:
        raise ConfigError(f"overrides for {method!r}: unknown field(s) {unknown}; valid: "
                          f"{sorted(names)}.")
    return {**hyper, **user}
