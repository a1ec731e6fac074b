"""The config base every method's hyper-parameters inherit: presets, type and range checks.

A method's config is a frozen dataclass (d3rlpy's ``LearnableConfig`` habit) with the paper's
defaults. ``TrainerConfig.validate`` checks every field against its annotation before any
training starts — NaN, ``True`` for a number, ``"32"`` for an int are refused with the field's
name — and then calls the config's own ``check`` for ranges and cross-field rules.
"""

from __future__ import annotations

import json
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, ClassVar, Literal

from retrofit.errors import ConfigError


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _check_value(name: str, value: Any, tp: Any) -> None:
    """Raise ``ConfigError`` if ``value`` does not fit the annotation ``tp``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                _check_value(name, value, option)
                return
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else
                          f"{name}={value!r} fits none of {tp}.")
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{name}={value!r}: use one of {allowed}.")
        return
    if origin is tuple:
        if not isinstance(value, tuple | list):
            raise ConfigError(f"{name}={value!r} must be a tuple, e.g. (256, 256).")
        args = typing.get_args(tp)
        item = args[0] if args else Any
        for element in value:
            _check_value(f"{name}[]", element, item)
        return
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name}={value!r} must be True or False.")
        return
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(
                f"{name}={value!r} ({type(value).__name__}) must be an integer, e.g. {name}=256."
            )
        return
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(
                f"{name}={value!r} ({type(value).__name__}) must be a number, e.g. {name}=0.2."
            )
        if not math.isfinite(value):
            raise ConfigError(f"{name}={value!r} must be a finite number.")
        return
    if tp is str and not isinstance(value, str):
        raise ConfigError(f"{name}={value!r} must be a string.")
    if isinstance(tp, type) and tp not in (str,) and not isinstance(value, tp):
        raise ConfigError(f"{name}={value!r} must be a {_type_name(tp)}.")


@dataclass(frozen=True)
class TrainerConfig:
    """Base of every method's config: ``steps`` and ``batch_size`` plus checks at construction.

    Subclasses redeclare the fields with their paper's defaults, list per-domain defaults in
    ``presets`` ({"bullet": {...}, "safety": {...}}; fields left as None take them) and put range
    rules in ``check``. Configs are validated when built, so a bad value fails before training.
    """

    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    added_later: ClassVar[Mapping[str, Any]] = {}
    """Fields added after runs were saved, with the value that reproduces those runs: a run
    record leaves such a field out while it holds that value, so a checkpoint saved before the
    field existed still resumes (``recorded_settings``)."""

    steps: int | None = None
    batch_size: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    def resolved(self, domain: str | None) -> TrainerConfig:
        """Fill fields left as None from the domain's preset (BulletGym's when unknown)."""
        preset = self.presets.get(domain or "bullet") or self.presets.get("bullet") or {}
        names = {f.name for f in fields(self)}
        filled = {name: value for name, value in preset.items()
                  if name in names and getattr(self, name) is None}
        tuples = {f.name: tuple(getattr(self, f.name)) for f in fields(self)
                  if isinstance(getattr(self, f.name), list)}
        return replace(self, **filled, **tuples) if filled or tuples else self

    def recorded_settings(self) -> dict[str, Any]:
        """The fields as JSON-able values for run records, minus ``steps`` and any
        ``added_later`` field at its old-run value."""
        settings = json.loads(json.dumps(asdict(self), default=str))
        settings.pop("steps", None)
        for name, value in self.added_later.items():
            if name in settings and getattr(self, name) == value:
                del settings[name]
        return settings

    def validate(self) -> None:
        """Check every field against its annotation (finite numbers, no bools for numbers), then
        ``check``. Raises ``ConfigError`` naming the field, the value and the fix."""
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            _check_value(f.name, getattr(self, f.name), hints[f.name])
        for name in ("steps",):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError(f"{name}={value} must be >= 0.")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"batch_size={self.batch_size} must be >= 1.")
        self.check()

    def check(self) -> None:
        """The method's own range and cross-field rules (none by default)."""

    def check_complete(self) -> None:
        """Rules on fields a user must set before training (e.g. the cost threshold); called by
        the trainer, not at construction, so a config can be built first and completed later."""

    def require_positive(self, *names: str) -> None:
        """Raise ``ConfigError`` unless each named field is > 0 (None is allowed: a preset)."""
        for name in names:
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name}={value} must be > 0.")
