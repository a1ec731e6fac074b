"""π_ref per seed and the dataset it is trained on: which file, its sha256, and the reference
policy each seed's cells start from (trained once, then reused while its settings match)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from retrofit.atomic import atomic_write_text
from retrofit.compare.config import PAPER_NETWORK, TANH_REFERENCE_HINT, CompareConfig
from retrofit.errors import ConfigError


def load_dataset(config: CompareConfig) -> tuple[Any, str]:
    """``config``'s dataset and its file's path: ``config.dataset``, else the file shipped for the
    task; ``"dsrl"``: DSRL's own file for the task, downloaded if needed."""
    from retrofit.data.dataset import TrajectoryDataset
    from retrofit.tasks import task_info

    env_id = task_info(config.task).env_id
    if config.dataset is None:
        from retrofit.data.shipped import default_dataset_path

        path = str(default_dataset_path(env_id))
        return TrajectoryDataset.from_hdf5(path, task=env_id), path
    if config.dataset == "dsrl":
        dsrl_data = TrajectoryDataset.from_dsrl(env_id)
        return dsrl_data, str(dsrl_data.metadata["source"])
    path = str(Path(config.dataset).absolute())
    return TrajectoryDataset.from_hdf5(path, task=env_id), path


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 hex digest of a file's bytes (the identity of a dataset, wherever it lies)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def reference_path(out: Path, seed: int) -> Path:
    """π_ref's policy file of ``seed`` (always inside ``out``; never a stored path)."""
    return Path(out) / "reference" / f"seed{seed}.pt"


def reference_bc_config(config: CompareConfig) -> Any:
    """The ``BCConfig`` that trains ``config``'s π_ref (``config.reference_class``): BCQ's VAE at
    PREFINE A.4's network size, the tanh-Gaussian, or the clipped Gaussian with spread
    ``reference_std``."""
    from retrofit.pretrain import BCConfig, VAEConfig

    family = config.reference_class
    if family == "vae":
        weight = {} if config.reference_kl_weight is None else {
            "kl_weight": config.reference_kl_weight}
        return VAEConfig(steps=config.bc_steps, hidden_sizes=PAPER_NETWORK, **weight)
    if family == "tanh-gaussian":
        return BCConfig(steps=config.bc_steps, policy="tanh-gaussian")
    return BCConfig(steps=config.bc_steps, policy="clipped-gaussian",
                    fixed_std=float(config.reference_spread))


def ensure_reference(config: CompareConfig, dataset: Any, seed: int,
                     dataset_sha256: str | None = None) -> dict[str, Any]:
    """Train (or reuse) π_ref for ``seed`` and evaluate it once; return its record.

    The record's ``policy`` is relative to ``config.out``; a stored π_ref made from another
    dataset (by ``dataset_sha256``) or with other ``bc_steps`` is refused.
    """
    from retrofit.device import cpu_model
    from retrofit.evaluation import evaluate
    from retrofit.policies.io import save_policy
    from retrofit.pretrain import pretrain_reference

    folder = Path(config.out) / "reference"
    record_path = folder / f"seed{seed}.json"
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        if record.get("bc_steps") != config.bc_steps:
            raise ConfigError(
                f"{record_path}: π_ref was trained with bc_steps={record.get('bc_steps')}, this "
                f"run asks for {config.bc_steps}; use another --out or the same --bc-steps."
            )
        if record.get("reference_std") != config.reference_spread:
            raise ConfigError(
                f"{record_path}: π_ref was trained with reference_std="
                f"{record.get('reference_std')}, this run asks for {config.reference_spread} "
                f"({config.reference_class}); use another --out or the same --reference-std "
                "and --reference-policy."
                + (TANH_REFERENCE_HINT if record.get("reference_std") is None else "")
            )
        family = config.reference_family()
        stored_family = {k: record[k] for k in ("reference_policy", "reference_kl_weight")
                         if k in record}
        if stored_family != family:
            raise ConfigError(
                f"{record_path}: π_ref was trained as {stored_family or 'the Gaussian'}, this run "
                f"asks for {family or 'the Gaussian'} (reference_policy, reference_kl_weight); "
                "use another --out or the same reference policy."
            )
        stored = record.get("dataset_sha256")
        if dataset_sha256 is not None and stored is not None and stored != dataset_sha256:
            raise ConfigError(
                f"{record_path}: π_ref was trained on another dataset (sha256 {stored[:12]}…, this "
                f"run's is {dataset_sha256[:12]}…); use another --out for another dataset."
            )
        return record
    folder.mkdir(parents=True, exist_ok=True)
    policy = pretrain_reference(dataset, reference_bc_config(config), device=config.device,
                                seed=seed, progress=config.progress)
    save_policy(policy, reference_path(config.out, seed))
    result = evaluate(policy, dataset.task, config.resolved_cost_thresholds()[0],
                      episodes=config.eval_episodes, seed=seed)
    record = {
        "seed": seed, "policy": f"reference/seed{seed}.pt", "bc_steps": config.bc_steps,
        "reference_std": config.reference_spread,
        **config.reference_family(),
        "dataset_sha256": dataset_sha256,
        "bc_wall_clock_s": float(getattr(policy, "train_wall_clock_s", float("nan"))),
        "reward": result.reward, "cost": result.cost,
        "normalized_reward": result.normalized_reward,
        "eval_episodes": config.eval_episodes, "eval_wall_clock_s": result.wall_clock_s,
        "cpu": cpu_model(),
    }
    atomic_write_text(record_path, json.dumps(record, indent=2))
    return record
