"""ruff runs in CI through the test command (.ci/run runs exactly the README's pytest)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff() -> list[str]:
    beside = Path(sys.executable).with_name("ruff")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("ruff")
    if found is None:
        pytest.fail("ruff is not installed: scripts/setup.sh installs it from requirements/")
    return [found]


def test_ruff_is_clean_on_the_whole_tree():
    result = subprocess.run([*_ruff(), "check", "--no-cache", str(ROOT)], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
