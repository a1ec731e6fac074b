"""The two small protocols every method honours, so ``Retrofitter`` and ``retrofit compare`` can
drive any of them by name.

A method is a pure loss in ``retrofit.losses`` plus a trainer here; configs are frozen dataclasses
with the paper's defaults in their docstrings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from retrofit.adapters.base import PolicyAdapter
from retrofit.metrics_log import MetricsLogger


class MethodConfig(Protocol):
    """A frozen dataclass of hyper-parameters with a ``steps`` field."""

    steps: int

    def resolved(self, domain: str | None) -> MethodConfig:
        """Fill domain-dependent defaults ("bullet" / "safety" presets) and validate."""
        ...


class Trainer(Protocol):
    """Trains a copy of a policy; ``fit`` returns the trained ``PolicyAdapter``.

    ``fit(*data)`` takes the method's own data: ``(preferred, nonpreferred)`` trajectory sets for
    PREFINE-style methods, one feedback object for PreSa-style methods, one trajectory dataset for
    offline safe RL baselines. Each trainer raises ``DataError`` for data it cannot use.
    """

    train_wall_clock_s: float
    steps_done: int

    def __init__(
        self, policy: PolicyAdapter, config: Any, device: Any = "auto", seed: int = 0
    ) -> None: ...

    def fit(
        self,
        *data: Any,
        steps: int | None = None,
        logger: MetricsLogger | None = None,
        progress: bool = True,
        callback: Callable[[int, Any], bool | None] | None = None,
        callback_every: int = 0,
    ) -> PolicyAdapter:
        """Train and return the trained adapter; ``callback`` runs off the clock."""
        ...

    def hyperparameters(self) -> dict[str, Any]:
        """The resolved config as a JSON-able dict."""
        ...
