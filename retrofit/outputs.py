"""Output paths that never destroy earlier work: checked before any training, and locked.

* :func:`check_writable` tries the write a job will do (a temp file in the target folder) before
  the job starts, so an unwritable output fails in a second, not after an hour of training.
* :func:`check_output_free` refuses to write over an existing file or into a non-empty folder
  unless the caller said ``overwrite``.
* :func:`folder_lock` holds ``.retrofit.lock`` (the owner's PID) in an output folder so that a
  second job into the same folder is refused while the first is alive; a lock left by a dead
  process (SIGKILL, power loss) is taken over.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from retrofit.errors import ConfigError

LOCK_NAME = ".retrofit.lock"


def _nearest_existing(path: Path) -> Path:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def check_writable(folder: str | os.PathLike[str], option: str = "--out") -> Path:
    """Raise :class:`ConfigError` unless files can be created in ``folder``; return it.

    The folder need not exist yet: its nearest existing ancestor must be a folder, and a probe
    file is created and removed there (in ``folder`` itself when it exists). Nothing is left
    behind.
    """
    folder = Path(folder)
    existing = _nearest_existing(folder.absolute())
    if not existing.is_dir():
        raise ConfigError(
            f"{option}={str(folder)!r}: {str(existing)!r} is a file, not a folder, so nothing can "
            f"be written under it. Choose another {option}."
        )
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".retrofit-write-probe.")
    except OSError as exc:
        raise ConfigError(
            f"{option}={str(folder)!r}: cannot write in {str(existing)!r} ({exc.strerror}). "
            f"Choose a writable {option} or fix the folder's permissions."
        ) from exc
    os.close(fd)
    os.unlink(probe)
    return folder


def check_output_free(path: str | os.PathLike[str], overwrite: bool,
                      option: str = "--out", ignore: tuple[str, ...] = ()) -> None:
    """Refuse (:class:`ConfigError`) an existing file or a non-empty folder at ``path``.

    ``overwrite=True`` allows it. Entries named in ``ignore`` do not make a folder non-empty.
    """
    if overwrite:
        return
    path = Path(path)
    if path.is_file():
        raise ConfigError(
            f"{option}={str(path)!r} already exists; pass --overwrite to replace it, or choose "
            f"another {option}."
        )
    if path.is_dir():
        entries = sorted(p.name for p in path.iterdir() if p.name not in ignore)
        if entries:
            shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
            raise ConfigError(
                f"{option}={str(path)!r} is not empty (holds {shown}); pass --overwrite to "
                f"write over its files, or choose another {option}."
            )


def check_output_file(path: str | os.PathLike[str], overwrite: bool,
                      option: str = "--out") -> Path:
    """Check an output *file* before any work: not a folder, not existing unless ``overwrite``,
    and its folder writable. Return it."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(
            f"{option}={str(path)!r} is a folder; give a file path, e.g. {str(path / 'out')!r}."
        )
    check_output_free(path, overwrite, option)
    check_writable(path.parent, option)
    return path


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused PID apart."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _alive(holder: dict[str, Any]) -> bool:
    if holder.get("host") != socket.gethostname():
        return True  # another machine's process: cannot be checked, so assume it is alive
    pid = holder.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    start = holder.get("start")
    return start is None or _start_ticks(pid) in (None, start)


def read_lock(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The lock record of ``folder`` (pid, host, start, command) or ``None`` if unlocked."""
    try:
        holder = json.loads((Path(folder) / LOCK_NAME).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _in_use(folder: Path, holder: dict[str, Any]) -> str:
    return (f"{str(folder)!r} is in use by another `{holder.get('command')}` (pid "
            f"{holder.get('pid')} on {holder.get('host')}). Wait for it to finish, or use another "
            "output folder; if that process is really gone, delete "
            f"{str(folder / LOCK_NAME)!r}.")


def check_unlocked(folder: str | os.PathLike[str]) -> None:
    """Refuse (:class:`ConfigError`, naming the holder) if a live process holds ``folder``'s
    lock; a lock left by a dead process does not count (:func:`folder_lock` takes it over)."""
    holder = read_lock(folder)
    if holder and _alive(holder):
        raise ConfigError(_in_use(Path(folder), holder))


@contextmanager
def folder_lock(folder: str | os.PathLike[str], command: str, *,
                reentrant: bool = False) -> Iterator[Path]:
    """Hold ``folder``'s lock for the block; refuse (:class:`ConfigError`) if a live process has it.

    The lock file is created complete and atomically (written to a temp file, then hard-linked
    into place, which fails if it exists). A lock whose process is gone is taken over.
    ``reentrant=True``: a lock this same process already holds is used as is (``retrofit fit``
    holds its folder while ``Retrofitter.fit`` asks for it again); the outer block releases it.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    me = {"pid": os.getpid(), "host": socket.gethostname(), "start": _start_ticks(os.getpid()),
          "command": command}
    holder = read_lock(folder) if reentrant else None
    if holder and all(holder.get(k) == me[k] for k in ("pid", "host", "start")):
        yield path
        return
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f"{LOCK_NAME}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(me, fh)
        for _ in range(3):
            try:
                os.link(tmp, path)
                break
            except FileExistsError:
                holder = read_lock(path.parent)
                if holder and _alive(holder):
                    raise ConfigError(_in_use(folder, holder)) from None
                path.unlink(missing_ok=True)  # stale: its owner died
        else:
            raise ConfigError(f"could not take the lock {str(path)!r}; try again.")
    finally:
        Path(tmp).unlink(missing_ok=True)
    try:
        yield path
    finally:
        if read_lock(folder) == me:
            path.unlink(missing_ok=True)
