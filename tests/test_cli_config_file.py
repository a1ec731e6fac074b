"""``--config FILE`` in every subcommand (issue 25): a YAML or JSON file of option values, the
command line winning over it, and the ``resolved_config.json`` each run writes, which reproduces
the run when passed back. Real fits of two steps on a 100-episode slice of the shipped BallRun
data; the other subcommands' long work is replaced by a recorder."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from retrofit.cli import main
from retrofit.cli_settings import RESOLVED_CONFIG
from retrofit.data.dataset import TrajectoryDataset, action_bounds
from retrofit.data.shipped import default_dataset_path
from retrofit.policies.clipped_gaussian import ClippedGaussianPolicy
from retrofit.policies.io import save_policy


def run(args: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``retrofit ARGS`` through the console entry point: (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["retrofit", *[str(a) for a in args]])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small policy and a 100-episode BallRun dataset."""
    root = tmp_path_factory.mktemp("files")
    data = TrajectoryDataset.from_hdf5(default_dataset_path("OfflineBallRun-v0"))
    data.select_episodes(list(range(100))).to_hdf5(root / "data.h5")
    torch.manual_seed(0)
    save_policy(ClippedGaussianPolicy(data.observations.shape[1], data.actions.shape[1],
                                      *action_bounds(data), hidden_sizes=(8,)), root / "r.pt")
    return {"policy": root / "r.pt", "data": root / "data.h5"}


FIT = ["--cost-threshold", "20", "--n-preferred", "20", "--n-nonpreferred", "5", "--steps", "2",
       "--quiet", "--device", "cpu"]


def resolved(folder: Path) -> dict[str, Any]:
    return json.loads((folder / RESOLVED_CONFIG).read_text())


def test_the_resolved_config_reproduces_a_fit(
        tmp_path: Path, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["fit", files["policy"], files["data"], "--out", tmp_path / "a.pt", *FIT,
                        "--set", "batch_size=8", "--set", "prefine.beta=0.2"], monkeypatch, capsys)
    assert code == 0, err
    first = resolved(tmp_path / "a_fit")
    assert first["command"] == "fit" and first["cost_threshold"] == 20
    assert first["set"] == {"batch_size": 8, "prefine.beta": 0.2} and first["progress"] is False
    code, _, err = run(["fit", "--config", tmp_path / "a_fit" / RESOLVED_CONFIG,
                        "--out", tmp_path / "b.pt"], monkeypatch, capsys)
    assert code == 0, err
    again = resolved(tmp_path / "b_fit")
    assert again == {**first, "out": str(tmp_path / "b.pt")}
    a, b = (torch.load(tmp_path / name, weights_only=True) for name in ("a.pt", "b.pt"))
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


def test_a_yaml_file_gives_options_and_fields_and_the_command_line_wins(
        tmp_path: Path, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "run.yaml").write_text(
        f"policy: {files['policy']}\ndata: {files['data']}\ncost-threshold: 20\n"
        "n_preferred: 20\nn-nonpreferred: 5\nsteps: 2\nquiet: true\ndevice: cpu\n"
        "set:\n  batch_size: 8\nbeta: 0.3\n")
    code, _, err = run(["fit", "--config", tmp_path / "run.yaml", "--out", tmp_path / "y.pt",
                        "--steps", "3", "--set", "beta=0.4"], monkeypatch, capsys)
    assert code == 0, err
    config = resolved(tmp_path / "y_fit")
    assert config["steps"] == 3 and config["n_preferred"] == 20 and config["progress"] is False
    assert config["set"] == {"batch_size": 8, "beta": 0.4}


@pytest.mark.parametrize(("command", "content", "message"), [
    (["collect", "BallRun", "--out", "{tmp}/c.hdf5"], {"nonsense": 1},
     "unknown key 'nonsense'"),
    (["fit", "{policy}", "{data}", "--out", "{tmp}/o.pt", "--cost-threshold", "20"],
     {"nonsense": 1}, "'prefine' has no field 'nonsense'"),
    (["demo", "--out", "{tmp}/d"], {"stepz": 3}, "unknown key 'stepz'"),
    (["fit", "{policy}", "{data}", "--out", "{tmp}/o.pt"], {"command": "compare"},
     "is for `retrofit compare`, not `retrofit fit`"),
])
def test_a_bad_key_is_one_line_and_exit_status_2(
        command: list[str], content: dict[str, Any], message: str, tmp_path: Path,
        files: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.json").write_text(json.dumps(content))
    args = [a.format(tmp=tmp_path, **files) for a in command]
    code, _, err = run([*args, "--config", tmp_path / "bad.json"], monkeypatch, capsys)
    assert code == 2 and message in err
    assert len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """compare, suite, collect and demo record what they were given instead of running."""
    import retrofit.collect
    import retrofit.compare
    import retrofit.demo
    import retrofit.suite.runner

    calls: dict[str, Any] = {}

    def compare(config: Any, log: Any) -> list[dict]:
        calls["compare"] = config
        Path(config.out).mkdir(parents=True, exist_ok=True)
        (Path(config.out) / "results.md").write_text("")
        return []

    def suite(settings: Any, out: Path, **kwargs: Any) -> dict[str, Any]:
        calls["suite"] = (settings, kwargs)
        return {}

    def collect(task: str, out: Path, n_episodes: int, **kwargs: Any) -> Any:
        calls["collect"] = (n_episodes, kwargs)
        return type("Data", (), {"n_episodes": n_episodes, "__len__": lambda self: 0})()

    def demo(config: Any, out: Path, overwrite: bool = False) -> dict[str, Any]:
        calls["demo"] = config
        return {}

    monkeypatch.setattr(retrofit.compare, "run_compare", compare)
    monkeypatch.setattr(retrofit.suite.runner, "run_suite", suite)
    monkeypatch.setattr(retrofit.collect, "collect_dataset", collect)
    monkeypatch.setattr(retrofit.demo, "run_demo", demo)
    monkeypatch.setattr(retrofit.demo, "format_table", lambda report: "")
    return calls


@pytest.mark.parametrize(("args", "written"), [
    (["compare", "BallRun", "--methods", "prefine,bc-safe", "--cost-thresholds", "10,20",
      "--steps", "3", "--set", "batch_size=16", "--out", "{out}"], "{out}/" + RESOLVED_CONFIG),
    (["suite", "BallRun", "--methods", "prefine", "--seeds", "0,1", "--set", "beta=0.3",
      "--quiet", "--out", "{out}"], "{out}/" + RESOLVED_CONFIG),
    (["collect", "BallRun", "--collect-episodes", "9", "--budgets", "", "--out", "{out}.hdf5"],
     "{out}.hdf5." + RESOLVED_CONFIG),
    (["demo", "--steps", "4", "--cost-threshold", "10", "--out", "{out}"],
     "{out}/" + RESOLVED_CONFIG),
])
def test_every_subcommand_reruns_from_its_resolved_config(
        args: list[str], written: str, tmp_path: Path, recorded: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    first_out, second_out = tmp_path / "first", tmp_path / "second"
    code, _, err = run([a.format(out=first_out) for a in args], monkeypatch, capsys)
    assert code == 0, err
    first_file = Path(written.format(out=first_out))
    first, calls = json.loads(first_file.read_text()), dict(recorded)
    recorded.clear()
    out = f"{second_out}.hdf5" if args[0] == "collect" else str(second_out)
    code, _, err = run([args[0], "--config", first_file, "--out", out], monkeypatch, capsys)
    assert code == 0, err
    second = json.loads(Path(written.format(out=second_out)).read_text())
    assert second == {**first, "out": out}
    if args[0] in ("compare", "demo"):
        assert recorded[args[0]] == calls[args[0]].__class__(
            **{**vars(calls[args[0]]), **({"out": second_out} if args[0] == "compare" else {})})
    else:
        assert str(recorded[args[0]]) == str(calls[args[0]])


def test_compare_reference_std_defaults_to_0_2_and_0_or_an_old_null_is_the_tanh_gaussian(
        tmp_path: Path, recorded: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 25: π_ref is the clipped Gaussian σ 0.2 unless asked; resolved configs written
    before then hold ``reference_std: null`` (the tanh-Gaussian) and still rerun as that."""
    base = ["compare", "BallRun", "--methods", "prefine", "--quiet"]
    code, _, err = run([*base, "--out", tmp_path / "a"], monkeypatch, capsys)
    assert code == 0, err
    assert recorded["compare"].reference_std == 0.2
    code, _, err = run([*base, "--reference-std", "0", "--out", tmp_path / "b"], monkeypatch,
                       capsys)
    assert code == 0, err
    assert recorded["compare"].reference_std is None
    assert resolved(tmp_path / "b")["reference_std"] == 0
    old = {**resolved(tmp_path / "a"), "reference_std": None}
    (tmp_path / "old.json").write_text(json.dumps(old))
    code, _, err = run(["compare", "--config", tmp_path / "old.json", "--out", tmp_path / "c"],
                       monkeypatch, capsys)
    assert code == 0, err
    assert recorded["compare"].reference_std is None


@pytest.mark.parametrize("command", ["compare", "demo"])
def test_a_resolved_config_from_before_top_fraction_reruns_with_the_better_half(
        command: str, tmp_path: Path, recorded: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """D_p's default became the N_p best SAFE episodes (docs/protocol.md, amendment 6): a resolved
    config written before the option existed (no ``top_fraction`` key) ran with the better half
    (0.5) and reruns as that; a hand-written file without the key takes the new default."""
    from retrofit.data.splits import PAPER_TOP_FRACTION

    base = [command, *(["BallRun", "--methods", "prefine"] if command == "compare" else []),
            "--quiet"]
    code, _, err = run([*base, "--out", tmp_path / "a"], monkeypatch, capsys)
    assert code == 0, err
    assert recorded[command].top_fraction == 0.0
    assert resolved(tmp_path / "a")["top_fraction"] == 0.0
    old = {k: v for k, v in resolved(tmp_path / "a").items() if k != "top_fraction"}
    (tmp_path / "old.json").write_text(json.dumps(old))
    code, _, err = run([command, "--config", tmp_path / "old.json", "--out", tmp_path / "b"],
                       monkeypatch, capsys)
    assert code == 0, err
    assert recorded[command].top_fraction == PAPER_TOP_FRACTION
    hand = {k: v for k, v in old.items() if k != "command"}
    (tmp_path / "hand.json").write_text(json.dumps(hand))
    code, _, err = run([command, "--config", tmp_path / "hand.json", "--out", tmp_path / "c"],
                       monkeypatch, capsys)
    assert code == 0, err
    assert recorded[command].top_fraction == 0.0


@pytest.mark.parametrize("command", ["compare", "suite"])
def test_reference_policy_is_one_option_of_compare_and_suite(
        command: str, tmp_path: Path, recorded: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``--reference-policy vae`` (docs/protocol.md amendment 10) and its ``--reference-kl-weight``
    (amendment 11) reach the harness from both subcommands; the Gaussian stays the default, and
    an unknown family is refused by name."""
    base = [command, "BallRun", "--methods", "prefine", "--quiet"]

    def given() -> str:
        return (recorded["compare"].reference_policy if command == "compare"
                else recorded["suite"][1]["reference_policy"])

    code, _, err = run([*base, "--out", tmp_path / "a"], monkeypatch, capsys)
    assert code == 0, err
    assert given() == "clipped-gaussian"
    code, _, err = run([*base, "--reference-policy", "vae", "--out", tmp_path / "b"],
                       monkeypatch, capsys)
    assert code == 0, err
    assert given() == "vae" and resolved(tmp_path / "b")["reference_policy"] == "vae"
    code, _, err = run([*base, "--reference-policy", "vae", "--reference-kl-weight", "0.05",
                        "--out", tmp_path / "d"], monkeypatch, capsys)
    assert code == 0, err
    weight = (recorded["compare"].reference_kl_weight if command == "compare"
              else recorded["suite"][1]["reference_kl_weight"])
    assert weight == 0.05 and resolved(tmp_path / "d")["reference_kl_weight"] == 0.05
    if command == "compare":  # the suite's runner builds its CompareConfig after the recorder
        code, _, err = run([*base, "--reference-policy", "mixture", "--out", tmp_path / "c"],
                           monkeypatch, capsys)
        assert code != 0 and "reference_policy='mixture'" in err
