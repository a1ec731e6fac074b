"""The defaults the README and docs state are the code's (a stale λ or z_ref misleads users)."""

import re
from pathlib import Path
from typing import get_args

from retrofit.methods.prefine import PREFINE_PRESETS
from retrofit.methods.presa import PresaConfig, ZRefMode

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
    assert "taken at one thread (`OMP_NUM_THREADS=1 .venv/bin/retrofit demo`)" in text


def test_readme_prefine_learning_rates_are_the_codes():
    text = " ".join(README.split())
    for domain, name in (("bullet", "BulletGym"), ("safety", "SafetyGym")):
        found = re.findall(rf"{name} β [\d.]+ / λ [\d.]+ / lr ([\d.e-]+)", text)
        assert found, f"the README states no {name} learning rate"
        assert {float(x) for x in found} == {PREFINE_PRESETS[domain]["learning_rate"]}, (
            f"README: {name} lr {found}; code: {PREFINE_PRESETS[domain]}")
