"""The feedback file format (HDF5), so synthetic and real human labels travel the same way.

Layout of a ``retrofit-feedback-v1`` file::

    /starts     int64 (N, 2)  row of each segment's first transition in the trajectory dataset's
                              flat DSRL arrays; column 0 the preferred segment σ⁺, column 1 σ⁻
    /safety     int8  (N, 2)  +1 safe / -1 unsafe, for the segments in /starts
    /dataset/   (optional)    the trajectory dataset itself: DSRL's seven arrays
                              (observations, next_observations, actions, rewards, costs,
                              terminals, timeouts) and attribute ``task``
    root attributes:
        format               "retrofit-feedback-v1" (required)
        segment_length       int, steps per segment (required)
        retrofit_version     library version that wrote the file
        task                 DSRL env id of the dataset ("" if unknown)
        cost_threshold       episode-level κ the labels were made for (NaN if unknown)
        metadata             JSON: how the labels were made
        dataset_path         (optional) path of the DSRL HDF5 file the starts index into,
                             relative to this file's folder or absolute
        dataset_fingerprint  (optional) retrofit.feedback.dataset_fingerprint of that dataset

A human-labelled file needs only ``/starts``, ``/safety``, ``format``, ``segment_length`` and
either ``/dataset`` or ``dataset_path`` (or the dataset passed to :func:`load`). Writes are atomic
(temporary file in the target folder, then ``os.replace``).
"""

from __future__ import annotations

import json
import math
import os
import pathlib
from typing import Any

import h5py
import numpy as np

from retrofit.atomic import atomic_write
from retrofit.errors import DataError
from retrofit.feedback.core import Feedback, dataset_fingerprint

FORMAT = "retrofit-feedback-v1"
_DSRL_KEYS = (
    "observations", "next_observations", "actions", "rewards", "costs", "terminals", "timeouts",
)


def save(
    feedback: Feedback,
    path: str | os.PathLike[str],
    *,
    embed_dataset: bool = True,
    dataset_path: str | os.PathLike[str] | None = None,
) -> pathlib.Path:
    """Write ``feedback`` to ``path`` atomically; return the path.

    With ``embed_dataset=False`` the file refers to ``dataset_path`` (required then) and stores
    the dataset's fingerprint so that loading it against other data fails loudly.
    """
    path = pathlib.Path(path)
    if not embed_dataset and dataset_path is None:
        raise DataError(
            "embed_dataset=False needs dataset_path=...: the file must say which DSRL HDF5 file "
            "its segment starts index into."
        )
    feedback.validate(require_both_classes=False)

    def write(tmp: pathlib.Path) -> None:
        with h5py.File(tmp, "w") as handle:
            _write(handle, feedback, embed_dataset, dataset_path, path.parent)

    atomic_write(path, write)
    return path


def _write(
    handle: h5py.File, feedback: Feedback, embed: bool,
    dataset_path: str | os.PathLike[str] | None, folder: pathlib.Path,
) -> None:
    from retrofit import __version__

    handle.create_dataset("starts", data=feedback.starts.astype(np.int64))
    handle.create_dataset("safety", data=feedback.safety.astype(np.int8))
    attrs = handle.attrs
    attrs["format"] = FORMAT
    attrs["retrofit_version"] = __version__
    attrs["segment_length"] = int(feedback.segment_length)
    attrs["task"] = feedback.task or ""
    attrs["cost_threshold"] = (
        math.nan if feedback.cost_threshold is None else float(feedback.cost_threshold)
    )
    attrs["metadata"] = json.dumps(feedback.metadata)
    attrs["dataset_fingerprint"] = dataset_fingerprint(feedback.dataset)
    if dataset_path is not None:
        ds_path = pathlib.Path(dataset_path)
        try:
            stored = os.path.relpath(ds_path.resolve(), folder.resolve())
        except ValueError:  # another drive on Windows
            stored = str(ds_path.resolve())
        attrs["dataset_path"] = stored
    if embed:
        group = handle.create_group("dataset")
        group.attrs["task"] = feedback.task or ""
        for key in _DSRL_KEYS:
            value = getattr(feedback.dataset, key, None)
            if value is None:
                raise DataError(
                    f"embed_dataset=True: the dataset has no {key!r}; embed a full "
                    "TrajectoryDataset or save with embed_dataset=False, dataset_path=..."
                )
            group.create_dataset(key, data=np.asarray(value), compression="gzip")


def _read_array(handle: h5py.File, key: str, path: pathlib.Path) -> np.ndarray:
    node = handle.get(key)
    if not isinstance(node, h5py.Dataset):
        raise DataError(
            f"{key}: missing from {str(path)!r}. A feedback file needs /starts (N, 2) and "
            "/safety (N, 2); see retrofit.feedback.io for the format."
        )
    return np.asarray(node[()])


def is_feedback_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is an HDF5 file written by :func:`save` (its ``format`` attribute)."""
    try:
        with h5py.File(path, "r") as handle:
            return bool(handle.attrs.get("format") == FORMAT)
    except OSError:
        return False


def load(
    path: str | os.PathLike[str], dataset: Any = None, *, require_both_classes: bool = True
) -> Feedback:
    """Read a feedback file written by :func:`save` (or by hand in the same format).

    The trajectory dataset is, in order of precedence: ``dataset`` if given, the embedded
    ``/dataset`` group, or the file at the ``dataset_path`` attribute. When the file has a
    fingerprint it must match the dataset.
    """
    from retrofit.data.dataset import TrajectoryDataset

    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(f"path={str(path)!r}: no such feedback file.")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"path={str(path)!r} is not a readable HDF5 file ({exc}).") from exc
    try:  # damaged bytes surface as h5py's OSError/RuntimeError/KeyError while reading
        with handle:
            fmt = handle.attrs.get("format")
            fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
            if fmt != FORMAT:
                raise DataError(
                    f"{str(path)!r}: attribute format={fmt!r}; expected {FORMAT!r}. Is this a "
                    "feedback file? (Trajectory datasets load with TrajectoryDataset.from_hdf5.)"
                )
            if "segment_length" not in handle.attrs:
                raise DataError(f"{str(path)!r}: attribute segment_length is missing.")
            segment_length = int(handle.attrs["segment_length"])
            starts = _read_array(handle, "starts", path)
            safety = _read_array(handle, "safety", path)
            task = str(handle.attrs.get("task", "")) or None
            threshold = float(handle.attrs.get("cost_threshold", math.nan))
            try:
                metadata = json.loads(str(handle.attrs.get("metadata", "{}")))
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"metadata: the attribute of {str(path)!r} is not valid JSON ({exc}); fix or "
                    "delete it (h5py: del f.attrs['metadata']), the labels are unaffected."
                ) from exc
            fingerprint = handle.attrs.get("dataset_fingerprint")
            stored_path = handle.attrs.get("dataset_path")
            if dataset is None and "dataset" in handle:
                group = handle["dataset"]
                arrays = {k: np.asarray(group[k][()]) for k in _DSRL_KEYS if k in group}
                missing = [k for k in _DSRL_KEYS if k not in arrays]
                if missing:
                    raise DataError(f"{str(path)!r}: /dataset lacks {missing}.")
                embedded_task = str(group.attrs.get("task", "")) or task
                dataset = TrajectoryDataset(**arrays, task=embedded_task)
    except DataError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        raise DataError(
            f"path={str(path)!r} is a damaged feedback file ({exc}): make it again with "
            "`retrofit feedback` (or feedback.save), or restore a copy."
        ) from exc
    if dataset is None:
        if stored_path is None:
            raise DataError(
                f"{str(path)!r} holds neither an embedded /dataset nor a dataset_path: pass the "
                "trajectory dataset the starts index into, load(path, dataset=...)."
            )
        ds_file = pathlib.Path(str(stored_path))
        if not ds_file.is_absolute():
            ds_file = path.parent / ds_file
        dataset = TrajectoryDataset.from_hdf5(ds_file, task=task)
    if fingerprint is not None and dataset_fingerprint(dataset) != str(fingerprint):
        raise DataError(
            f"{str(path)!r} was made for a different dataset (fingerprint mismatch): its starts "
            "would index the wrong transitions. Pass the dataset the feedback was made from."
        )
    return Feedback(
        dataset, starts, safety, segment_length,
        cost_threshold=None if math.isnan(threshold) else threshold,
        metadata=metadata, require_both_classes=require_both_classes,
    )
