"""Read and write DSRL-format HDF5 files.

The seven DSRL arrays sit at the top level of the file under DSRL's own names, so ``dsrl``'s
``env.get_dataset(h5path=...)`` reads what we write and we read what it reads. Our extras live in
root attributes only (``retrofit_task``, ``retrofit_metadata`` as JSON, and the action bounds when
they were given), which ``dsrl`` ignores. Writes are atomic: a temporary file in the target's
folder, flushed to disk, then ``os.replace``.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Mapping
from typing import Any

import h5py
import numpy as np

from retrofit.atomic import atomic_write
from retrofit.data.validation import DSRL_KEYS
from retrofit.errors import DataError

ATTR_TASK = "retrofit_task"
ATTR_METADATA = "retrofit_metadata"
ATTR_ACTION_LOW = "retrofit_action_low"
ATTR_ACTION_HIGH = "retrofit_action_high"
COMPRESSIONS = (None, "gzip", "lzf")


def read_hdf5(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Return ``(arrays, extras)`` of a DSRL-format file.

    ``arrays`` holds the DSRL keys that are present (validation reports any missing ones);
    ``extras`` holds ``task``, ``metadata``, ``action_low`` and ``action_high`` from our attributes
    (``None``/``{}`` when absent, e.g. in DSRL's own files).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(
            f"path={str(path)!r}: no such file. Give the path of a DSRL-format .hdf5 file, or make "
            "one with `retrofit collect`."
        )
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"path={str(path)!r} is not a readable HDF5 file ({exc}).") from exc
    with handle:
        arrays: dict[str, np.ndarray] = {}
        for key in DSRL_KEYS:
            if key not in handle:
                continue
            node = handle[key]
            if not isinstance(node, h5py.Dataset):
                raise DataError(
                    f"{key}: in {str(path)!r} is an HDF5 group, not an array; DSRL files keep "
                    "every key as a top-level dataset."
                )
            try:
                arrays[key] = node[()]
            except (OSError, RuntimeError, ValueError) as exc:  # h5py: bad chunk/filter data
                raise DataError(
                    f"{key}: in {str(path)!r} cannot be read; the file is corrupt "
                    f"({type(exc).__name__}: {exc}). Copy or download it again, or recreate it "
                    "(e.g. `retrofit collect`)."
                ) from exc
        try:
            attrs = handle.attrs
            task = _str_attr(attrs, ATTR_TASK)
            raw_metadata = _str_attr(attrs, ATTR_METADATA)
            low = np.asarray(attrs[ATTR_ACTION_LOW]) if ATTR_ACTION_LOW in attrs else None
            high = np.asarray(attrs[ATTR_ACTION_HIGH]) if ATTR_ACTION_HIGH in attrs else None
        except (OSError, RuntimeError, KeyError) as exc:
            raise DataError(
                f"{str(path)!r}: its attributes cannot be read; the file is corrupt "
                f"({type(exc).__name__}: {exc}). Copy or recreate it."
            ) from exc
        metadata = _parse_metadata(raw_metadata, path)
    missing = [k for k in DSRL_KEYS if k not in arrays]
    if missing:
        raise DataError(
            f"{str(path)!r} lacks key(s) {missing}; a DSRL file needs {list(DSRL_KEYS)} at its "
            "top level."
        )
    extras = {"task": task, "metadata": metadata, "action_low": low, "action_high": high}
    return arrays, extras


def _parse_metadata(raw: str | None, path: pathlib.Path) -> dict[str, Any]:
    """The ``retrofit_metadata`` attribute as a dict; bad JSON is a :class:`DataError`."""
    if not raw:
        return {}
    try:
        metadata = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{ATTR_METADATA}: the attribute of {str(path)!r} is not valid JSON ({exc}; starts "
            f"{raw[:40]!r}). Fix or delete the attribute (h5py: del f.attrs[{ATTR_METADATA!r}]); "
            "the arrays themselves are unaffected."
        ) from exc
    if not isinstance(metadata, dict):
        raise DataError(
            f"{ATTR_METADATA}: the attribute of {str(path)!r} holds a JSON "
            f"{type(metadata).__name__}, not an object. Store a JSON object (a dict) or delete it."
        )
    return metadata


def _str_attr(attrs: h5py.AttributeManager, name: str) -> str | None:
    if name not in attrs:
        return None
    value = attrs[name]
    return value.decode() if isinstance(value, bytes) else str(value)


def write_hdf5(
    path: str | os.PathLike[str],
    arrays: Mapping[str, np.ndarray],
    *,
    task: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    action_low: np.ndarray | None = None,
    action_high: np.ndarray | None = None,
    compression: str | None = "gzip",
) -> pathlib.Path:
    """Write the DSRL arrays (and our attributes) to ``path`` atomically; return the path.

    If anything fails, an existing file at ``path`` is left byte-identical and the temporary file
    is removed.
    """
    if compression not in COMPRESSIONS:
        raise DataError(
            f"compression={compression!r} is not supported; use one of {list(COMPRESSIONS)}."
        )
    path = pathlib.Path(path)
    def write(tmp: pathlib.Path) -> None:
        with h5py.File(tmp, "w") as handle:
            for key in DSRL_KEYS:
                arr = arrays[key]
                # The byte-shuffle filter (HDF5 built-in, read by any h5py) makes float arrays
                # compress ~15% smaller; compression level stays gzip's default.
                packed = compression is not None and arr.size > 0
                handle.create_dataset(
                    key, data=arr, compression=compression if packed else None,
                    shuffle=packed,
                )
            if task is not None:
                handle.attrs[ATTR_TASK] = task
            handle.attrs[ATTR_METADATA] = json.dumps(dict(metadata or {}), allow_nan=False)
            if action_low is not None:
                handle.attrs[ATTR_ACTION_LOW] = action_low
            if action_high is not None:
                handle.attrs[ATTR_ACTION_HIGH] = action_high

    return atomic_write(path, write)
