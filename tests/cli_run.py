"""Run the ``retrofit`` command line inside the test process (shared by the CLI error tests)."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable

import pytest


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
            args: Iterable[object]) -> tuple[int, str]:
    """Run ``retrofit ARGS`` in this process; ``(exit status, stderr)`` (warnings silenced)."""
    from retrofit.cli import main

    monkeypatch.setattr(sys, "argv", ["retrofit", *map(str, args)])
    code = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            main()
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, capsys.readouterr().err
