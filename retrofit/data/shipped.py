"""The datasets shipped inside the package (``retrofit/data/default/``), found by task."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from retrofit.errors import DataError

# Datasets shipped in retrofit/data/default/, by task (each made by `retrofit collect`).
SHIPPED_DATASETS = {
    "OfflineBallCircle-v0": "SafetyBallCircle-v0-167-800.hdf5",
    "OfflineBallRun-v0": "SafetyBallRun-v0-93-972.hdf5",
    "OfflineCarRun-v0": "SafetyCarRun-v0-185-600.hdf5",
    "OfflineCarCircle-v0": "SafetyCarCircle-v0-263-400.hdf5",
    "OfflineHopperVelocityGymnasium-v1": "SafetyHopperVelocityGymnasium-v1-246-200.hdf5",
    "OfflineWalker2dVelocityGymnasium-v1": "SafetyWalker2dVelocityGymnasium-v1-36-200.hdf5",
}


def default_dataset_path(task: str = "OfflineBallRun-v0") -> Path:
    """Path of the dataset shipped for ``task`` (BallRun, the fastest to simulate, by default)."""
    from retrofit.tasks import task_info

    env_id = task_info(task).env_id
    if env_id not in SHIPPED_DATASETS:
        raise DataError(
            f"No dataset ships for task={task!r} (shipped: {', '.join(SHIPPED_DATASETS)}). Make "
            f"one with `retrofit collect {env_id} --out FILE` and pass it as the dataset."
        )
    path = Path(str(resources.files("retrofit.data") / "default" / SHIPPED_DATASETS[env_id]))
    if not path.exists():
        raise DataError(f"The shipped dataset {path} is missing: reinstall retrofit.")
    return path
