"""Atomic file writes: write a temp file in the target folder, then rename it into place.

A reader (or a run stopped half-way) sees the old file or the new one, never half of one. Every
writer in retrofit (text, bytes, HDF5, PNG, ``torch.save``) goes through :func:`atomic_write`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temp path next to ``path``, fsync it, rename it to ``path``.

    The folder is created. The file keeps an existing file's mode, else gets 0644 (``mkstemp``
    makes 0600). On any failure the temp file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb+") as raw:
            os.fsync(raw.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (folder created); return the path."""
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (folder created); return the path."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_torch_save(path: str | os.PathLike[str], payload: object) -> Path:
    """``torch.save(payload)`` to ``path`` atomically (folder created); return the path."""
    import torch

    return atomic_write(path, lambda tmp: torch.save(payload, tmp))
