"""Offline data in DSRL's format: loading, validation, saving and PREFINE's preference split.

This layer uses numpy and h5py only (no torch); see ``docs/data.md``.
"""

from retrofit.data.dataset import TrajectoryDataset
from retrofit.data.splits import preference_split_indices
from retrofit.data.validation import DSRL_KEYS, check_preference_sets, validate_arrays

__all__ = [
    "DSRL_KEYS",
    "TrajectoryDataset",
    "check_preference_sets",
    "preference_split_indices",
    "validate_arrays",
]
