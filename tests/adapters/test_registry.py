"""Adapters register beside their classes; the docs' one-file adapter example works as written."""

from __future__ import annotations

import re
from pathlib import Path

import torch

import retrofit.adapters as adapters
from retrofit.adapters.registry import _REGISTRY, registered_adapters

DOC = Path(__file__).resolve().parents[2] / "docs" / "adapters.md"


def test_shipped_adapters_register_in_their_own_modules_in_wrap_order() -> None:
    modules = [factory.__module__ for _, _, factory in registered_adapters()][:7]
    assert modules == [f"retrofit.adapters.{m}" for m in (
        "gaussian_mlp", "clipped_gaussian", "vae", "sb3", "d3rlpy", "deterministic_mlp",
        "decision_transformer")]


def test_docs_one_file_adapter_is_picked_by_wrap() -> None:
    text = DOC.read_text()
    code = re.search(r"```python\n(# my_project/retrofit_adapter\.py.*?)```", text, re.S)
    assert code is not None, "docs/adapters.md lost its one-file adapter example"
    before = list(_REGISTRY)
    namespace: dict[str, object] = {"__name__": "my_project.retrofit_adapter"}
    try:
        exec(compile(code.group(1), "docs/adapters.md", "exec"), namespace)
        policy = namespace["MyPolicy"](8, 2)  # type: ignore[operator]
        adapter = adapters.wrap(policy)
        assert type(adapter).__name__ == "MyPolicyAdapter"
        obs = torch.zeros(3, 8)
        assert adapter.log_prob(obs, torch.zeros(3, 2)).shape == (3,)
    finally:
        _REGISTRY[:] = before
