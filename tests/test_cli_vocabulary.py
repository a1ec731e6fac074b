"""One option vocabulary across ``fit``, ``compare``, ``suite``, ``presa``, ``collect`` and
``demo`` (issue 25): the same name for the same thing in each, every option in docs/cli.md once,
``--set`` in both spellings everywhere it trains, and the old spellings still accepted with a
warning. The commands are real; the long work behind them (training, collection) is replaced by
a recorder, so each case takes milliseconds."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main

from retrofit.cli import app, main

COMMANDS = ("fit", "compare", "suite", "presa", "collect", "demo")
DOCS = Path(__file__).resolve().parents[1] / "docs" / "cli.md"

SHARED = {
    "--config": COMMANDS,
    "--out": COMMANDS,
    "--progress": COMMANDS,
    "--set": ("fit", "compare", "suite", "presa"),
    "--episodes": ("fit", "compare", "suite", "presa", "demo"),
    "--cost-threshold": ("fit", "presa", "demo"),
    "--cost-thresholds": ("compare", "suite"),
    "--collect-episodes": ("suite", "collect"),
    "--report-dir": ("fit", "presa"),
    "--steps": ("fit", "compare", "suite", "presa", "demo"),
    "--device": ("fit", "compare", "suite", "presa", "demo"),
    "--n-preferred": ("fit", "compare", "suite", "demo"),
    "--n-nonpreferred": ("fit", "compare", "suite", "demo"),
    "--top-fraction": ("fit", "compare", "suite", "demo"),
}
"""Options that mean one thing in several subcommands, and the subcommands that take them."""


def visible_options() -> dict[str, set[str]]:
    """Each visible option of the six subcommands (``--on/--off`` for flags) → subcommands."""
    group = typer.main.get_command(app)
    found: dict[str, set[str]] = {}
    for command in COMMANDS:
        for param in group.commands[command].params:  # type: ignore[attr-defined]
            if param.param_type_name != "option" or param.hidden:
                continue
            name = param.opts[0] + "".join("/" + o for o in param.secondary_opts)
            found.setdefault(name, set()).add(command)
    return found


def run(args: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``retrofit ARGS`` through the console entry point: (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["retrofit", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("option", sorted(SHARED))
def test_a_shared_option_has_one_name_in_every_subcommand(option: str) -> None:
    found = {name.split("/")[0]: commands for name, commands in visible_options().items()}
    assert found[option] == set(SHARED[option])


def test_progress_and_quiet_behave_the_same_everywhere() -> None:
    group = typer.main.get_command(app)
    for command in COMMANDS:
        (param,) = [p for p in group.commands[command].params  # type: ignore[attr-defined]
                    if p.name == "progress"]
        assert (param.opts, param.secondary_opts, param.default) == (
            ["--progress"], ["--quiet"], True), command


def test_docs_list_every_option_once_with_its_subcommands() -> None:
    rows = re.findall(r"^\| `([^`]+)` \|.*\| ([a-z, ]+) \|$", DOCS.read_text(), re.MULTILINE)
    names = [name for name, _ in rows]
    assert len(names) == len(set(names)), "an option is listed twice"
    documented = {name: {c.strip() for c in commands.split(",")} for name, commands in rows}
    assert documented == visible_options()


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace fit, compare, suite and collect's work by recorders of what they were given."""
    import retrofit.collect
    import retrofit.compare
    import retrofit.fit_command
    import retrofit.suite.runner

    calls: dict[str, Any] = {}

    def fit(request: Any) -> dict[str, Any]:
        calls["fit"] = request
        return {"steps": 0, "train_wall_clock_s": 0.0}

    def compare(config: Any, log: Any) -> list[dict]:
        calls["compare"] = config
        Path(config.out).mkdir(parents=True, exist_ok=True)
        (Path(config.out) / "results.md").write_text("")
        return []

    def suite(settings: Any, out: Path, **kwargs: Any) -> dict[str, Any]:
        calls["suite"] = (settings, kwargs)
        return {}

    def collect(task: str, out: Path, n_episodes: int, **kwargs: Any) -> Any:
        calls["collect"] = n_episodes
        return type("Data", (), {"n_episodes": n_episodes, "__len__": lambda self: 0})()

    monkeypatch.setattr(retrofit.fit_command, "run_fit", fit)
    monkeypatch.setattr(retrofit.compare, "run_compare", compare)
    monkeypatch.setattr(retrofit.suite.runner, "run_suite", suite)
    monkeypatch.setattr(retrofit.collect, "collect_dataset", collect)
    return calls


def test_set_takes_field_and_method_field_in_fit_and_presa(
        tmp_path: Path, recorded: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    policy, data = tmp_path / "r.pt", tmp_path / "d.h5"
    fit = ["fit", str(policy), str(data), "--out", str(tmp_path / "o.pt"), "--quiet"]
    code, _, err = run([*fit, "--set", "beta=0.2", "--set", "prefine.batch_size=8"],
                       monkeypatch, capsys)
    assert code == 0, err
    assert recorded["fit"].overrides == {"beta": 0.2, "batch_size": 8}
    assert recorded["fit"].progress is False
    code, _, err = run([*fit, "--set", "cpq.num_q=2"], monkeypatch, capsys)
    assert code == 2 and "this run trains 'prefine', not 'cpq'" in err
    code, _, err = run([*fit, "--set", "nonsense=1"], monkeypatch, capsys)
    assert code == 2 and "'prefine' has no field 'nonsense'" in err
    code, _, err = run(["presa", str(policy), str(data), "--out", str(tmp_path / "p.pt"),
                        "--set", "presa.eta=0.5", "--set", "batch_size=4"], monkeypatch, capsys)
    assert code == 0, err
    assert recorded["fit"].overrides == {"eta": 0.5, "batch_size": 4}


def test_set_in_compare_and_suite_reaches_the_harness(
        tmp_path: Path, recorded: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    sets = ["--set", "batch_size=16", "--set", "prefine.beta=0.3"]
    expected = {"prefine": {"batch_size": 16, "beta": 0.3}, "bc-safe": {"batch_size": 16}}
    code, _, err = run(["compare", "BallRun", "--methods", "prefine,bc-safe", "--out",
                        str(tmp_path / "c"), *sets], monkeypatch, capsys)
    assert code == 0, err
    assert recorded["compare"].overrides == expected and recorded["compare"].progress
    code, _, err = run(["suite", "BallRun", "--methods", "prefine,bc-safe", "--out",
                        str(tmp_path / "s"), *sets], monkeypatch, capsys)
    assert code == 0, err
    assert recorded["suite"][1]["overrides"] == expected
    code, _, err = run(["suite", "BallRun", "--out", str(tmp_path / "s2"), "--set", "num_q=2"],
                       monkeypatch, capsys)
    assert code == 2 and "no method of --methods (prefine) has a field 'num_q'" in err


@pytest.mark.parametrize(("args", "old", "new"), [
    (["collect", "BallRun", "--out", "{tmp}/c.hdf5", "--episodes", "7"], "--episodes",
     "--collect-episodes"),
    (["presa", "{tmp}/r.pt", "{tmp}/f.h5", "--out", "{tmp}/p.pt", "--log-dir", "{tmp}/rep"],
     "--log-dir", "--report-dir"),
    (["compare", "BallRun", "--methods", "bc-safe", "--out", "{tmp}/cmp", "--thresholds",
      "10,20"], "--thresholds", "--cost-thresholds"),
    (["suite", "BallRun", "--out", "{tmp}/s", "--thresholds", "10,20"], "--thresholds",
     "--cost-thresholds"),
])
def test_deprecated_spellings_still_work_and_warn(
        args: list[str], old: str, new: str, tmp_path: Path, recorded: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run([a.format(tmp=tmp_path) for a in args], monkeypatch, capsys)
    assert code == 0, err
    assert f"warning: {old} is deprecated" in err and f"use {new}" in err
    command = args[0]
    if command == "collect":
        assert recorded["collect"] == 7
    elif command == "presa":
        assert recorded["fit"].report_dir == tmp_path / "rep"
    elif command == "compare":
        assert recorded["compare"].cost_thresholds == (10.0, 20.0)
    else:
        assert recorded["suite"][0].cost_thresholds == (10.0, 20.0)
    resolved = next(tmp_path.rglob("*resolved_config.json"))
    written = json.loads(resolved.read_text())
    assert old.lstrip("-").replace("-", "_") not in written
    assert written[new.lstrip("-").replace("-", "_")] is not None


def test_old_and_new_spelling_together_are_refused(
        tmp_path: Path, recorded: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["collect", "BallRun", "--out", str(tmp_path / "c.hdf5"), "--episodes",
                        "7", "--collect-episodes", "8"], monkeypatch, capsys)
    assert code == 2 and "give it once, as --collect-episodes" in err
    assert "collect" not in recorded


def test_the_split_options_reach_every_run_and_default_to_the_protocols_d_p(
        tmp_path: Path, recorded: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from retrofit.data.splits import DEFAULT_TOP_FRACTION

    group = typer.main.get_command(app)
    for command in ("fit", "compare", "suite", "demo"):
        (param,) = [p for p in group.commands[command].params  # type: ignore[attr-defined]
                    if p.name == "top_fraction"]
        assert param.default == DEFAULT_TOP_FRACTION, command
    split = ["--n-preferred", "50", "--n-nonpreferred", "10", "--top-fraction", "0.5"]
    policy, data = tmp_path / "r.pt", tmp_path / "d.h5"
    code, _, err = run(["fit", str(policy), str(data), "--out", str(tmp_path / "o.pt"), *split],
                       monkeypatch, capsys)
    assert code == 0, err
    request = recorded["fit"]
    assert (request.n_preferred, request.n_nonpreferred, request.top_fraction) == (50, 10, 0.5)
    code, _, err = run(["compare", "BallRun", "--methods", "bc-safe", "--out",
                        str(tmp_path / "c"), *split], monkeypatch, capsys)
    assert code == 0, err
    config = recorded["compare"]
    assert (config.n_preferred, config.n_nonpreferred, config.top_fraction) == (50, 10, 0.5)
    code, _, err = run(["suite", "BallRun", "--out", str(tmp_path / "s"), *split],
                       monkeypatch, capsys)
    assert code == 0, err
    settings = recorded["suite"][0]
    assert (settings.n_preferred, settings.n_nonpreferred, settings.top_fraction) == (50, 10, 0.5)
    code, _, err = run(["compare", "BallRun", "--methods", "bc-safe", "--out",
                        str(tmp_path / "c2"), "--top-fraction", "1.5"], monkeypatch, capsys)
    assert code != 0 and "top_fraction=1.5 must be a number in [0, 1]" in err
