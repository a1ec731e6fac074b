"""The README's Python quickstart and docs/methods.md's "adding a method" example run as written
(numbers scaled down where marked), so the documentation cannot drift from the code."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from retrofit.errors import LikelihoodWarning

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_readme_quickstart_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    blocks = [b for b in python_blocks(ROOT / "README.md") if "Retrofitter(" in b]
    assert len(blocks) == 1, "the README has one quickstart block"
    code = blocks[0].replace("20_000", "30").replace("episodes=20", "episodes=1")
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LikelihoodWarning)  # issue 25: its default π_ref fits
        exec(compile(code, "README.md", "exec"), {})  # the shipped data without one
    out = capsys.readouterr().out
    assert "normalized" in out.lower() or "reward" in out.lower()
    assert (tmp_path / "runs" / "quickstart" / "metrics.csv").stat().st_size > 0


def test_methods_doc_example_registers_and_trains() -> None:
    from retrofit import TrajectoryDataset
    from retrofit.adapters import wrap
    from retrofit.data.dataset import action_bounds
    from retrofit.data.shipped import default_dataset_path
    from retrofit.methods import registry
    from retrofit.policies.gaussian import TanhGaussianPolicy

    blocks = [b for b in python_blocks(ROOT / "docs" / "methods.md") if "register_method" in b]
    assert len(blocks) == 1
    namespace: dict = {}
    exec(compile(blocks[0], "docs/methods.md", "exec"), namespace)
    try:
        spec = registry.get_method("sft")
        data = TrajectoryDataset.from_hdf5(default_dataset_path()).select_episodes(list(range(80)))
        preferred, nonpreferred = data.split_preferences(20, n_preferred=5, n_nonpreferred=2)
        policy = TanhGaussianPolicy(data.observations.shape[1], data.actions.shape[1],
                                    *action_bounds(data), hidden_sizes=(8,))
        trainer = spec.trainer(wrap(policy), spec.config(steps=3, batch_size=8), device="cpu")
        trainer.fit(preferred, nonpreferred, progress=False)
        assert trainer.steps_done == 3
    finally:
        registry._METHODS.pop("sft", None)
