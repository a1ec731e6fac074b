"""``Retrofitter``: the one entry point. Wrap a policy, fit a method, get the same kind back."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import torch

from retrofit.adapters import wrap
from retrofit.adapters.base import PolicyAdapter
from retrofit.atomic import atomic_write_text
from retrofit.errors import ConfigError, DataError
from retrofit.methods.registry import get_method
from retrofit.metrics_log import CSVLogger, MetricsLogger


def _domain_of(data: Any) -> str | None:
    task = getattr(data, "task", None)
    if not task:
        return None
    from retrofit.tasks import task_info

    return task_info(task).domain


class Retrofitter:
    """Make a pretrained policy safe from offline preferences.

    ``Retrofitter(policy).fit(preferred, nonpreferred)`` works with defaults alone: the method is
    PREFINE with the paper's hyper-parameters for the data's domain. Keyword arguments override
    fields of the method's config (``beta=0.2, sft_weight=1.0, steps=20_000``, ...).
    """

    def __init__(
        self,
        policy: Any,
        method: str = "prefine",
        *,
        device: str | torch.device = "auto",
        seed: int = 0,
        progress: bool = True,
        log_dir: str | Path | None = None,
        **hyperparameters: Any,
    ) -> None:
        self.adapter: PolicyAdapter = wrap(policy)
        self.method = method
        spec = get_method(method)
        self._trainer_cls, self._config_cls = spec.load()
        valid = {f.name for f in fields(self._config_cls)}
        unknown = sorted(set(hyperparameters) - valid)
        if unknown:
            raise ConfigError(
                f"Unknown hyper-parameter(s) {unknown} for method {method!r}; "
                f"valid: {sorted(valid)}."
            )
        self.config = self._config_cls(**hyperparameters)
        self.device = device
        self.seed = seed
        self.progress = progress
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.trainer: Any = None

    def fit(self, *data: Any, steps: int | None = None, **fit_kwargs: Any) -> Any:
        """Fine-tune and return the policy in the user's own format (``adapter.export()``).

        ``data`` is what the method learns from: ``(preferred, nonpreferred)`` for PREFINE-style
        methods, one feedback object for PreSa-style methods, one dataset for offline safe-RL
        baselines. The domain preset (BulletGym / SafetyGym) is taken from the data's task.
        """
        if not data:
            raise DataError(
                f"method {self.method!r} needs training data: e.g. fit(preferred, nonpreferred) "
                "with the two sets from dataset.split_preferences(...)."
            )
        config = self.config.resolved(_domain_of(data[0]))
        if steps is not None:
            config = replace(config, steps=steps)
        self.trainer = self._trainer_cls(self.adapter, config, device=self.device, seed=self.seed)
        logger: MetricsLogger | None = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.log_dir / "config.json", json.dumps({
                "method": self.method, "seed": self.seed, **self.trainer.hyperparameters(),
            }, indent=2))
            logger = CSVLogger(self.log_dir / "metrics.csv")
        trained = self.trainer.fit(*data, logger=logger, progress=self.progress, **fit_kwargs)
        self.policy_ = trained
        return trained.export()

    @property
    def train_wall_clock_s(self) -> float:
        """Training wall-clock of the last ``fit`` (evaluation and callbacks excluded)."""
        return 0.0 if self.trainer is None else float(self.trainer.train_wall_clock_s)
