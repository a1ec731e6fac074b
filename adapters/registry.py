"""The adapter registry: each adapter module registers itself at its end (``register_adapter``).

``wrap`` (in ``retrofit.adapters``) tries the registered adapters in registration order. The
shipped ones register when ``retrofit.adapters`` imports their modules; a third-party adapter
registers when its own module is imported. Matchers of third-party libraries check
``sys.modules`` first, so registering never imports SB3 or d3rlpy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from retrofit.adapters.base import PolicyAdapter

Matcher = Callable[[Any], bool]
Factory = Callable[[Any], PolicyAdapter]
_REGISTRY: list[tuple[str, Matcher, Factory]] = []


def register_adapter(description: str, matches: Matcher, factory: Factory) -> None:
    """Register an adapter: ``matches(obj)`` selects it, ``factory(obj)`` builds it.

    ``description`` is what the ``PolicyError`` of an unsupported object lists.
    """
    _REGISTRY.append((description, matches, factory))


def registered_adapters() -> list[tuple[str, Matcher, Factory]]:
    """The registered ``(description, matches, factory)`` triples, in the order ``wrap`` tries."""
    return list(_REGISTRY)
