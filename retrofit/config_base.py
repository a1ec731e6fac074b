"""The one config base: a frozen dataclass checked against its annotations when it is built.

Every config of retrofit (a method's hyper-parameters, BC, FQE, the demo, collection, a
comparison, the suite's per-task rows) is a frozen dataclass that inherits :class:`Config`
(d3rlpy's ``LearnableConfig`` habit). Building one runs :meth:`Config.validate`: every field is
checked against its annotation — NaN, ``True`` for a number, ``"32"`` for an int, a value outside a
``Literal`` are refused with the field's name, the value and an example — and then the config's
own :meth:`Config.check` applies its ranges and cross-field rules. ``dataclasses.replace`` builds a
new config, so it is checked too. Nothing is converted: ``asdict`` gives back what was passed.

pydantic could check the annotations instead; it was tried and not taken (no hand-written code
goes away): only classes decorated with pydantic's own ``dataclass`` are checked, its messages
do not name the fix (each would need translating into ``ConfigError``), its strict mode refuses
the lists a JSON or YAML config gives for tuples while its lax mode accepts ``"32"`` and turns
``1`` into ``1.0`` in a saved run record, and it is no direct dependency of retrofit.
"""

from __future__ import annotations

import functools
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any, Literal

from retrofit.errors import ConfigError

_EXAMPLES: dict[type, Any] = {int: 256, float: 0.2}


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def check_value(name: str, value: Any, tp: Any, example: Any = None) -> None:
    """Raise ``ConfigError`` if ``value`` does not fit the annotation ``tp``.

    ``int`` takes Python integers but not ``bool``; ``float`` takes finite ints and floats;
    ``tuple[X, ...]`` takes a tuple or a list of ``X``; ``dict[...]`` any mapping; a class, its
    instances; ``Any`` and other generics anything. ``example`` is a valid value the message
    offers (default: 256 for an int, 0.2 for a number).
    """
    if tp is Any:
        return
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
                check_value(name, value, option, example)
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
        args = typing.get_args(tp)
        item = args[0] if args else Any
        if not isinstance(value, tuple | list):
            shown = (example if isinstance(example, tuple) and example else
                     (_EXAMPLES[item],) * 2 if item in _EXAMPLES else None)
            raise ConfigError(f"{name}={value!r} must be a tuple of {_type_name(item)}"
                              + (f", e.g. {name}={shown}." if shown else "."))
        for element in value:
            check_value(f"{name}[]", element, item)
        return
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{name}={value!r} must be a dict, e.g. {{}}.")
        return
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name}={value!r} must be True or False.")
        return
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(
                f"{name}={value!r} ({type(value).__name__}) must be an integer, e.g. "
                f"{name}={_example(int, example)}."
            )
        return
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(
                f"{name}={value!r} ({type(value).__name__}) must be a number, e.g. "
                f"{name}={_example(float, example)}."
            )
        if not math.isfinite(value):
            raise ConfigError(f"{name}={value!r} must be a finite number.")
        return
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name}={value!r} must be a string.")
        return
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{name}={value!r} must be a {_type_name(tp)}.")


def _example(tp: type, example: Any) -> Any:
    """``example`` if it is a valid ``tp`` (a field's default), else a generic one."""
    if isinstance(example, tp) and not isinstance(example, bool) and (
            tp is int or math.isfinite(example)):
        return example
    return _EXAMPLES[tp]


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    """The resolved annotation of every field of ``cls`` (computed once per class)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


@dataclass(frozen=True)
class Config:
    """Base of every retrofit config: checked when built, by annotation then by ``check``.

    A subclass is a ``@dataclass(frozen=True)`` with its defaults (and their sources) in the
    docstring; it puts its ranges and cross-field rules in ``check`` and raises ``ConfigError``
    naming the field, the value found and the fix.
    """

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field against its annotation, then ``check``. Raises ``ConfigError``
        naming the field, the value and the fix."""
        self.check_types()
        self.check()

    def check_types(self) -> None:
        """Check every field against its annotation (finite numbers, no bools for numbers)."""
        for f in fields(self):
            check_value(f.name, getattr(self, f.name), _field_types(type(self))[f.name],
                        self.example(f.name))

    def example(self, name: str) -> Any:
        """A valid value of field ``name`` for error messages: its default (None if it has none;
        then the message offers a generic one)."""
        default = next(f.default for f in fields(self) if f.name == name)
        return None if default is MISSING else default

    def check(self) -> None:
        """The config's own range and cross-field rules (none by default)."""

    def require_positive(self, *names: str) -> None:
        """Raise ``ConfigError`` unless each named field is > 0 (None is allowed: a preset or a
        default computed later)."""
        for name in names:
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name}={value} must be > 0.")

    def require_at_least(self, minimum: int, *names: str) -> None:
        """Raise ``ConfigError`` unless each named integer field is >= ``minimum`` (None is
        allowed: a preset or a default computed later)."""
        for name in names:
            value = getattr(self, name)
            if value is not None and value < minimum:
                raise ConfigError(f"{name}={value!r} must be an integer >= {minimum}.")
