"""Methods are found by name through this registry, not an if/elif chain or a side table.

Each method module ends with ``register_method(name, Trainer, Config, summary)`` beside its
classes (d3rlpy's ``register_learnable`` habit). The registry imports every module of the
``retrofit.methods`` package the first time a name is asked for, so adding a method is adding
its module: the harness, the CLI and the tests read everything from here.
"""

from __future__ import annotations

import pkgutil
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from retrofit.errors import ConfigError
from retrofit.training.trainer import REGISTERED_NAMES


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: its name, trainer class, config class and one-line summary."""

    name: str
    trainer: Any
    config: Any
    summary: str

    def load(self) -> tuple[Any, Any]:
        """``(TrainerClass, ConfigClass)``."""
        return self.trainer, self.config

    @property
    def data_kind(self) -> str:
        """What ``fit`` takes: ``pairs``, ``feedback`` or ``transitions`` (the trainer's)."""
        return str(self.trainer.data_kind)


_METHODS: dict[str, MethodSpec] = {}
_LOADED = False


def register_method(name: str, trainer: Any, config: Any, summary: str) -> None:
    """Add a method (a name may be registered once); called at the end of its module."""
    if name in _METHODS and _METHODS[name].trainer is not trainer:
        raise ConfigError(f"method {name!r} is already registered")
    if getattr(trainer, "data_kind", None) not in ("pairs", "feedback", "transitions"):
        raise ConfigError(f"method {name!r}: {trainer.__name__}.data_kind must be 'pairs', "
                          "'feedback' or 'transitions'.")
    _METHODS[name] = MethodSpec(name, trainer, config, summary)
    REGISTERED_NAMES.setdefault((trainer, config), name)


def _ensure_loaded() -> None:
    global _LOADED
    if _LOADED:
        return
    import retrofit.methods as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name != "registry":
            import_module(f"{package.__name__}.{info.name}")
    _LOADED = True


def get_method(name: str) -> MethodSpec:
    """Look up a method by name, with an error listing the available ones."""
    _ensure_loaded()
    if name not in _METHODS:
        raise ConfigError(f"method={name!r} is unknown. Available: {', '.join(sorted(_METHODS))}.")
    return _METHODS[name]


def available_methods(data_kind: str | None = None) -> list[str]:
    """Names of all registered methods (only those that take ``data_kind``, if given)."""
    _ensure_loaded()
    return sorted(n for n, s in _METHODS.items() if data_kind in (None, s.data_kind))
