"""Methods are found by name through this registry, not an if/elif chain."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any

from retrofit.errors import ConfigError


@dataclass(frozen=True)
class MethodSpec:
    """Where a method's trainer and config live (imported lazily)."""

    name: str
    module: str
    trainer: str
    config: str
    summary: str

    def load(self) -> tuple[Any, Any]:
        """Import and return ``(TrainerClass, ConfigClass)``."""
        mod = import_module(self.module)
        return getattr(mod, self.trainer), getattr(mod, self.config)


# Each family of methods lists its MethodSpecs in a light catalog module (no torch import), so
# that adding a family never edits this file's logic.
_CATALOGS = (
    "retrofit.methods.catalog_prefine",
    "retrofit.methods.catalog_presa",
    "retrofit.methods.catalog_baselines",
)
_METHODS: dict[str, MethodSpec] = {}


def register_method(spec: MethodSpec) -> None:
    """Add a method to the registry (a name may be registered once)."""
    if spec.name in _METHODS:
        raise ConfigError(f"method {spec.name!r} is already registered")
    _METHODS[spec.name] = spec


def _ensure_loaded() -> None:
    if _METHODS:
        return
    for catalog in _CATALOGS:
        for spec in import_module(catalog).METHODS:
            register_method(spec)


def get_method(name: str) -> MethodSpec:
    """Look up a method by name, with an error listing the available ones."""
    _ensure_loaded()
    if name not in _METHODS:
        raise ConfigError(f"method={name!r} is unknown. Available: {', '.join(sorted(_METHODS))}.")
    return _METHODS[name]


def available_methods() -> list[str]:
    """Names of all registered methods."""
    _ensure_loaded()
    return sorted(_METHODS)
