"""Resuming a comparison folder: the settings its cells and ``compare.json`` share, the check
that a finished cell may be reused, and the manifest that merges every run's grid."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from retrofit.atomic import atomic_write_text
from retrofit.compare.config import HALF_SAFE_HINT, TANH_REFERENCE_HINT, CompareConfig
from retrofit.data.splits import PAPER_TOP_FRACTION
from retrofit.errors import ConfigError

MANIFEST = "compare.json"  # in the folder: its settings and the union of every run's grid


def run_settings(config: CompareConfig, dataset_sha256: str) -> dict[str, Any]:
    """What every cell of one output folder shares (the grid of methods, κ and seeds aside)."""
    from retrofit.tasks import task_info

    return {
        "task": task_info(config.task).env_id, "dataset_sha256": dataset_sha256,
        **{k: v for k, v in cell_settings(config, "", dataset_sha256).items()
           if k not in ("overrides", "dataset_sha256")},
    }


def cell_settings(config: CompareConfig, method: str, dataset_sha256: str) -> dict[str, Any]:
    """What a finished cell must share with the current run to be reused."""
    return {
        "dataset_sha256": dataset_sha256, "steps": config.steps,
        "batch_size": config.batch_size,
        "eval_episodes": config.eval_episodes, "checkpoint_every": config.every(),
        "checkpoint_episodes": config.checkpoint_episodes,
        "safe_reward_fraction": config.safe_reward_fraction, "bc_steps": config.bc_steps,
        "n_preferred": config.n_preferred, "n_nonpreferred": config.n_nonpreferred,
        "device": config.device, "threads": config.threads,
        "overrides": config.overrides.get(method, {}),
        # absent for the tanh-Gaussian (None), so folders made before the option, and before
        # 0.2 became the default (issue 25), resume with reference_std=None as they were
        **({"reference_std": config.reference_spread}
           if config.reference_spread is not None else {}),
        **config.reference_family(),
        **({"nonpreferred_pool": config.nonpreferred_pool}
           if config.nonpreferred_pool != "highest-cost" else {}),
        # absent for 0.5 (PAPER_TOP_FRACTION), the default until amendment 6 of
        # docs/protocol.md: a folder made before then resumes only with --top-fraction 0.5
        **({"top_fraction": config.top_fraction}
           if config.top_fraction != PAPER_TOP_FRACTION else {}),
    }


def check_reusable(path: Path, expected: dict[str, Any], dataset_path: str) -> None:
    """Refuse the finished cell at ``path`` unless it was made with ``expected`` settings (a cell
    from before datasets had a sha256 counts as this dataset only if it names ``dataset_path``)."""
    found = json.loads(path.read_text()).get("settings")
    if isinstance(found, dict) and "dataset" in found and "dataset_sha256" not in found:
        # a cell from before datasets were identified by content: same file by path is required
        legacy = str(found["dataset"])
        same = Path(legacy).absolute() == Path(dataset_path).absolute()
        found = {k: v for k, v in found.items() if k != "dataset"}
        found["dataset_sha256"] = expected["dataset_sha256"] if same else f"file {legacy}"
    if json.loads(json.dumps(expected)) != found:
        raise ConfigError(
            f"{path} was made with other settings ({found}) than this run's ({expected}); "
            "finished cells are only reused by an identical comparison. Use another --out, or "
            "delete that cell to rerun it."
        )


def _merged(first: Sequence[Any], second: Sequence[Any]) -> list[Any]:
    return list(first) + [x for x in second if x not in first]


def check_and_merge_manifest(config: CompareConfig, dataset_path: str,
                             dataset_sha256: str) -> CompareConfig:
    """Refuse a folder made with another dataset/settings; return the config of the whole folder.

    The returned config's methods, κ values and seeds are the union of every run's (earlier
    first); ``compare.json`` is updated before any training, so a killed run's grid is kept.
    """
    out = Path(config.out)
    settings = run_settings(config, dataset_sha256)
    path = out / MANIFEST
    grid = {"methods": list(config.methods),
            "cost_thresholds": list(config.resolved_cost_thresholds()),
            "seeds": list(config.seeds)}
    if path.is_file():
        try:
            manifest = json.loads(path.read_text())
            found = manifest["settings"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path} is damaged ({exc}); use another --out.") from exc
        if found != json.loads(json.dumps(settings)):
            diff = sorted(k for k in set(found) | set(settings)
                          if found.get(k) != settings.get(k))
            raise ConfigError(
                f"--out {str(out)!r} holds a comparison made with other settings ({', '.join(diff)}"
                f": {', '.join(f'{k}={found.get(k)!r}' for k in diff)}; this run: "
                f"{', '.join(f'{k}={settings.get(k)!r}' for k in diff)}). One folder holds one "
                "dataset and one set of settings: use another --out, or the same settings."
                + (TANH_REFERENCE_HINT if "reference_std" in diff
                   and found.get("reference_std") is None else "")
                + (HALF_SAFE_HINT if "top_fraction" in diff
                   and found.get("top_fraction") is None else "")
            )
        grid = {k: _merged(manifest.get(k, []), grid[k]) for k in grid}
    manifest = {"format": "retrofit-compare-v1", "settings": settings, **grid,
                "dataset": dataset_path}
    atomic_write_text(path, json.dumps(manifest, indent=2))
    return dataclasses.replace(config, methods=tuple(grid["methods"]),
                               cost_thresholds=tuple(float(k) for k in grid["cost_thresholds"]),
                               seeds=tuple(int(x) for x in grid["seeds"]))
