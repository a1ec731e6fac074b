"""``TrainerConfig``: the base of every method's config — presets, ``steps``, ``batch_size``.

A method's config is a frozen dataclass (d3rlpy's ``LearnableConfig`` habit) with the paper's
defaults. It is a :class:`retrofit.config_base.Config`, so it is checked when built: every field
against its annotation, then ``steps``/``batch_size``, then the method's own ``check``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, ClassVar

from retrofit.config_base import Config


@dataclass(frozen=True)
class TrainerConfig(Config):
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

    def resolved(self, domain: str | None) -> TrainerConfig:
        """Fill fields left as None from the domain's preset (BulletGym's when unknown)."""
        preset = self.presets.get(domain or "bullet") or self.presets.get("bullet") or {}
        names = {f.name for f in fields(self)}
        filled = {name: value for name, value in preset.items()
                  if name in names and getattr(self, name) is None}
        tuples = {f.name: tuple(getattr(self, f.name)) for f in fields(self)
                  if isinstance(getattr(self, f.name), list)}
        return replace(self, **filled, **tuples) if filled or tuples else self

    def example(self, name: str) -> Any:
        """The field's default, else its BulletGym preset (for error messages)."""
        default = super().example(name)
        return default if default is not None else self.presets.get("bullet", {}).get(name)

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
        """Check every field against its annotation, ``steps >= 0`` and ``batch_size >= 1``,
        then ``check``. Raises ``ConfigError`` naming the field, the value and the fix."""
        self.check_types()
        self.require_at_least(0, "steps")
        self.require_at_least(1, "batch_size")
        self.check()

    def check_complete(self) -> None:
        """Rules on fields a user must set before training (e.g. the cost threshold); called by
        the trainer, not at construction, so a config can be built first and completed later."""
