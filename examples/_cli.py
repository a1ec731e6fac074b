"""The examples' command line, shared so no example copies argument plumbing.

Each example's settings are an ``Args`` dataclass with a docstring under every field (CleanRL's
habit), read by tyro: each field is a flag (``train_steps`` → ``--train-steps``) whose help is
that docstring. ``--small`` starts from the example's small preset (a dict of the fields it
changes, kept beside ``Args`` as data) instead of its full defaults; flags given with it still win,
so ``--small --steps 500`` is the small preset with 500 steps. Each example's docstring gives the
time of its ``--small`` run, measured end to end with OMP_NUM_THREADS=1 on a 2-core machine that
was running two other training jobs (``tests/test_examples.py`` runs them all with ``-m slow``).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

SMALL_FLAG = "--small"
"""The flag that selects an example's small preset."""


@dataclass
class ExampleArgs:
    """Settings every example has; an example's ``Args`` subclasses this."""

    small: bool = False
    """Start from the example's small preset (its SMALL dict: a budget that finishes in about two
    minutes on one CPU thread); flags given beside it still win."""
    threads: int = 1
    """torch CPU threads (default 1, as the retrofit CLI: the count chosen by measurement,
    docs/benchmarks.md)."""


ArgsT = TypeVar("ArgsT", bound=ExampleArgs)


def parse(defaults: ArgsT, small: Mapping[str, Any], *, description: str | None = None,
          args: Sequence[str] | None = None) -> ArgsT:
    """Read an example's ``Args`` from the command line (``args``; default ``sys.argv[1:]``).

    ``defaults`` is the example's full setting; ``small`` the fields its ``--small`` preset
    changes, applied before the flags given. ``description`` (the example's module docstring)
    heads ``--help``. An unknown flag or a bad value exits with tyro's message and status 2.
    """
    try:
        import tyro
    except ImportError:
        raise SystemExit("The examples read their settings with tyro, which is not installed: "
                         "pip install 'retrofit-rl[examples]' (scripts/setup.sh installs it)."
                         ) from None
    argv = list(sys.argv[1:] if args is None else args)
    start = replace(defaults, small=True, **small) if SMALL_FLAG in argv else defaults
    return tyro.cli(type(defaults), args=argv, default=start, description=description)
