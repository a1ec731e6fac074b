"""Atomic file writes: write a temp file in the target folder, then rename it into place.

A reader (or a run stopped half-way) sees the old file or the new one, never half of one. Every
writer in retrofit (text, bytes, HDF5, PNG, ``torch.save``) goes through :func:`atomic_write`.
Two failures get one clear line instead of the writer's own error: a path under a regular file
(:class:`ConfigError`) and a full disk (:class:`DiskFullError`, naming the path and the bytes
needed; torch and h5py report it as a ``RuntimeError`` without ``errno``, so a failed write on a
file system with less than :data:`NEARLY_FULL` bytes free counts as one too).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from retrofit.errors import ConfigError, DiskFullError

NEARLY_FULL = 64 * 1024
"""Free bytes below which a failed write is reported as a full disk."""


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None],
                 size: int | None = None) -> Path:
    """Call ``write(tmp)`` on a temp path next to ``path``, fsync it, rename it to ``path``.

    The folder is created. The file keeps an existing file's mode, else gets 0644 (``mkstemp``
    makes 0600). On any failure the temp file is removed and ``path`` is left as it was.
    ``size`` (bytes, when known) is named in the error of a full disk.
    """
    path = Path(path)
    _make_folder(path)
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        _raise_if_disk_full(exc, path, size, 0)
        raise
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb+") as raw:
            os.fsync(raw.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException as exc:
        written = tmp.stat().st_size if tmp.exists() else 0
        try:
            _raise_if_disk_full(exc, path, size, written)
        finally:
            tmp.unlink(missing_ok=True)
        raise
    return path


def _make_folder(path: Path) -> None:
    """Create ``path``'s folder; a regular file where a folder must be is a ``ConfigError``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        blocker = next((p for p in (path.parent, *path.parent.parents)
                        if p.exists() and not p.is_dir()), path.parent)
        raise ConfigError(
            f"path={str(path)!r}: {str(blocker)!r} is a file, not a folder, so nothing can be "
            "written under it. Choose another path."
        ) from exc


def _raise_if_disk_full(exc: BaseException, path: Path, size: int | None, written: int) -> None:
    """Raise :class:`DiskFullError` from ``exc`` when the write failed for lack of space."""
    if not isinstance(exc, OSError | RuntimeError) or isinstance(exc, DiskFullError):
        return
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return
    chain: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in chain:
        chain.append(link)
        link = link.__cause__ or link.__context__
    enospc = any(getattr(e, "errno", None) == errno.ENOSPC or "No space left" in str(e)
                 for e in chain)
    if not enospc and free >= NEARLY_FULL:
        return
    needed = f"{size} bytes" if size is not None else f"more than the {written} bytes written"
    raise DiskFullError(
        errno.ENOSPC,
        f"no space left to write {str(path)!r}: it needs {needed} and the file system holding "
        f"it has {free} bytes free. Free some space or write elsewhere; {str(path)!r} was left "
        "as it was.",
    ) from exc


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (folder created); return the path."""
    data = text.encode()
    return atomic_write(path, lambda tmp: tmp.write_bytes(data), size=len(data))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (folder created); return the path."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data), size=len(data))


def atomic_torch_save(path: str | os.PathLike[str], payload: object) -> Path:
    """``torch.save(payload)`` to ``path`` atomically (folder created); return the path."""
    import torch

    return atomic_write(path, lambda tmp: torch.save(payload, tmp))
