"""The defaults the README and docs state are the code's (a stale λ or z_ref misleads users)."""

import re
from pathlib import Path
from typing import get_args

import typer.main

from retrofit.cli import app
from retrofit.compare import CompareConfig
from retrofit.demo import DemoConfig
from retrofit.device import DEFAULT_THREADS
from retrofit.methods.prefine import PREFINE_PRESETS
from retrofit.methods.presa import PresaConfig, ZRefMode
from retrofit.pretrain import BCConfig

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_prefine_presets_are_the_codes():
    text = " ".join(README.split())  # a preset may wrap across lines
    for domain, name in (("bullet", "BulletGym"), ("safety", "SafetyGym")):
        preset = PREFINE_PRESETS[domain]
        found = re.findall(rf"{name} (?:preset )?β =? ?([\d.]+),? /? ?λ =? ?([\d.]+)", text)
        assert found, f"the README states no {name} preset"
        for beta, sft_weight in found:
            assert (float(beta), float(sft_weight)) == (preset["beta"], preset["sft_weight"]), (
                f"README: {name} β {beta} / λ {sft_weight}; code: {preset}")


def test_presa_docs_name_the_codes_z_ref_default():
    text = " ".join((ROOT / "docs" / "presa.md").read_text().split())
    default = PresaConfig().z_ref
    modes = "|".join(get_args(ZRefMode))
    said = re.findall(rf'`"({modes})"` \(default', text)
    assert said and set(said) == {default}, f"docs/presa.md calls {said} the default: {default!r}"


def test_readme_says_which_thread_count_the_demo_numbers_were_taken_at():
    text = " ".join(README.split())
    assert "depend on the torch thread count" in text
    assert "run at one torch thread unless `--threads N` says otherwise" in text
    assert DEFAULT_THREADS == 1 and DemoConfig().threads == DEFAULT_THREADS


def test_readme_prefine_learning_rates_are_the_codes():
    text = " ".join(README.split())
    for domain, name in (("bullet", "BulletGym"), ("safety", "SafetyGym")):
        found = re.findall(rf"{name} β [\d.]+ / λ [\d.]+ / lr ([\d.e-]+)", text)
        assert found, f"the README states no {name} learning rate"
        assert {float(x) for x in found} == {PREFINE_PRESETS[domain]["learning_rate"]}, (
            f"README: {name} lr {found}; code: {PREFINE_PRESETS[domain]}")


def test_docs_state_the_codes_default_reference_policy():
    """Issue 25: one default π_ref family (BCConfig, `retrofit compare`, `retrofit suite`),
    stated as it is in the README's Quickstart, docs/prefine.md and docs/cli.md."""
    config = BCConfig()
    prefine = (ROOT / "docs" / "prefine.md").read_text()
    rows = re.findall(r'^\| `policy="([a-z-]+)", fixed_std=([\d.]+|None)` \(default\) \|',
                      prefine, re.MULTILINE)
    assert rows == [(config.policy, f"{config.fixed_std:g}")], rows
    readme = " ".join(README.split())
    said = re.findall(r"# π_ref: BC of a clipped Gaussian, fixed spread ([\d.]+) half-ranges "
                      r"\(BCConfig's default", readme)
    assert config.policy == "clipped-gaussian" and said == [f"{config.fixed_std:g}"], said
    cli = (ROOT / "docs" / "cli.md").read_text()
    (default,) = re.findall(r"^\| `--reference-std` \|.*default ([\d.]+)\)", cli, re.MULTILINE)
    assert float(default) == config.fixed_std
    group = typer.main.get_command(app)
    for command in ("compare", "suite"):
        (param,) = [p for p in group.commands[command].params  # type: ignore[attr-defined]
                    if p.name == "reference_std"]
        assert param.default == float(default), command
    compare = CompareConfig(task="BallRun", methods=("prefine",), out=Path("unused"))
    assert compare.reference_std == float(default)
    # one name for the family: CompareConfig and the commands spell it as BCConfig does
    assert compare.reference_policy == compare.reference_class == config.policy
    for command in ("compare", "suite"):
        (param,) = [p for p in group.commands[command].params  # type: ignore[attr-defined]
                    if p.name == "reference_policy"]
        assert param.default == config.policy, command
