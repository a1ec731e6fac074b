"""Every example reads its settings as a typed config (issue 25): ``--help`` lists each field with
its docstring, ``--small`` starts from the example's small preset with the flags given beside it
winning, a task without shipped data stops before writing anything, and (slow) every example's
small setting runs end to end from its real command line on the shipped data.

The examples are found by globbing ``examples/`` (``_cli.py``, the shared helper, is not one), so
a new example is covered without editing this file.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_DIR = ROOT / "examples"
EXAMPLES = sorted(p for p in EXAMPLES_DIR.glob("*.py") if not p.name.startswith("_"))


@pytest.fixture()
def examples_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Import the examples as they import each other (their folder first on ``sys.path``)."""
    monkeypatch.syspath_prepend(str(EXAMPLES_DIR))


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each dataclass field of ``cls`` and its bases, read from the source."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__[:-1]):
        body = ast.parse(inspect.getsource(klass).strip()).body[0].body  # type: ignore[attr-defined]
        for field, doc in zip(body, body[1:], strict=False):
            if isinstance(field, ast.AnnAssign) and isinstance(doc, ast.Expr) \
                    and isinstance(doc.value, ast.Constant):
                docs[field.target.id] = doc.value.value  # type: ignore[union-attr]
    return docs


def flat(text: str) -> str:
    """Help text without tyro's box borders, on one line: wrapped phrases read whole."""
    return " ".join(text.replace("│", " ").split())


def test_examples_are_found() -> None:
    assert {p.stem for p in EXAMPLES} >= {"prefine_dsrl", "presa_ballrun",
                                          "presa_halfcheetah_velocity", "retrofit_sb3"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_help_exits_0_and_lists_every_field_with_its_docstring(
        path: Path, examples_path: None, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    args_cls = importlib.import_module(path.stem).Args
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(sys, "argv", [str(path), "--help"])
    with pytest.raises(SystemExit) as stop:
        runpy.run_path(str(path), run_name="__main__")
    assert stop.value.code == 0
    shown = flat(capsys.readouterr().out)
    docs = field_docs(args_cls)
    names = [f.name for f in dataclasses.fields(args_cls)]
    assert {"small", "threads"} <= set(names) and set(docs) == set(names)
    for name in names:
        assert f"--{name.replace('_', '-')} " in shown, name
        assert flat(docs[name])[:40] in shown, name  # the field's docstring is its help


def test_small_preset_then_the_flags_given(examples_path: None) -> None:
    import presa_ballrun

    full = presa_ballrun.parse_args(args=[])
    assert full == presa_ballrun.Args() and not full.small and full.threads == 1
    small = presa_ballrun.parse_args(args=["--small", "--steps", "7", "--threads", "1"])
    assert small.small and small.steps == 7 and small.threads == 1  # the flag wins
    assert small.n_pairs == presa_ballrun.SMALL["n_pairs"] != full.n_pairs
    assert small.episodes == presa_ballrun.SMALL["episodes"] != full.episodes
    with pytest.raises(SystemExit) as stop:
        presa_ballrun.parse_args(args=["--stpes", "7"])
    assert stop.value.code == 2


def test_an_example_runs_twice_into_the_same_folder(examples_path: None, tmp_path: Path) -> None:
    """The second run replaces the first's outputs (it used to stop at the old checkpoint)."""
    import presa_ballrun

    argv = ["--small", "--n-pairs", "40", "--pretrain-steps", "3", "--steps", "3",
            "--episodes", "1", "--out", str(tmp_path)]
    for _ in range(2):
        report = presa_ballrun.main(presa_ballrun.parse_args(args=argv))
    assert json.loads((tmp_path / "report.json").read_text()) == report
    rows = (tmp_path / "presa" / "metrics.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["1", "2", "3"]


def test_a_task_without_shipped_data_stops_saying_what_it_needs(
        examples_path: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = EXAMPLES_DIR / "presa_halfcheetah_velocity.py"
    monkeypatch.setattr(sys, "argv", [str(path), "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit, match="pass --dataset FILE") as stop:
        runpy.run_path(str(path), run_name="__main__")
    assert "retrofit collect OfflineHalfCheetahVelocityGymnasium-v1" in str(stop.value.code)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_small_setting_runs_end_to_end(path: Path, tmp_path: Path) -> None:
    """``python examples/X.py --small`` on one torch thread: it exits 0 and writes its results."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(path), "--small", "--out", str(out)], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    written = [out / name for name in ("results.csv", "results.json", "report.json")]
    assert any(p.is_file() and p.stat().st_size > 0 for p in written), sorted(out.iterdir())
