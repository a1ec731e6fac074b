"""Runtime fixes for the simulator packages, applied by us at import, never in site-packages.

1. safety-gymnasium 0.4.0 declares dataclass fields whose defaults are numpy arrays taken from
   ``safety_gymnasium.assets.color.COLOR``. Python 3.11 rejects unhashable defaults ("mutable
   default ... use default_factory"). We swap the colour arrays for a hashable ndarray view
   before any geom module is imported; values and dtypes are unchanged.
2. bullet-safety-gym 1.4.0 silences pybullet by ``dup2``-ing the file descriptor behind
   ``sys.stdout``/``sys.stderr``. Under pytest's output capture those streams have no file
   descriptor and the import fails. We import it with the real process streams in place and replace
   its ``RedirectStream`` by one that does nothing when a stream has no usable descriptor.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

_patched: set[str] = set()


class _HashableArray(np.ndarray):
    """An ndarray that dataclasses accept as a field default (identity hash, like any object)."""

    __hash__ = object.__hash__  # type: ignore[assignment]


def patch_safety_gymnasium() -> None:
    """Make safety-gymnasium 0.4.0 importable on Python 3.11 (fix 1 above). Idempotent."""
    if "safety_gymnasium" in _patched:
        return
    from safety_gymnasium.assets import color

    for key, value in list(color.COLOR.items()):
        if not isinstance(value, _HashableArray):
            color.COLOR[key] = np.asarray(value).view(_HashableArray)
    _patched.add("safety_gymnasium")


def _is_process_stream(stream: Any) -> bool:
    """True for the real C-level stdout/stderr (what ``RedirectStream`` can redirect and flush).

    Captured streams (pytest, IDEs) may have a descriptor but a name like ``<_io.FileIO ...>``,
    for which bullet-safety-gym's libc symbol lookup fails.
    """
    if getattr(stream, "name", None) not in ("<stdout>", "<stderr>"):
        return False
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False
    return True


@contextlib.contextmanager
def _real_std_streams() -> Iterator[None]:
    saved = sys.stdout, sys.stderr
    if not _is_process_stream(sys.stdout):
        sys.stdout = sys.__stdout__
    if not _is_process_stream(sys.stderr):
        sys.stderr = sys.__stderr__
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def patch_bullet_safety_gym() -> None:
    """Make bullet-safety-gym 1.4.0 work under captured output (fix 2 above). Idempotent."""
    if "bullet_safety_gym" in _patched:
        return
    with _real_std_streams():
        from bullet_safety_gym.envs import builder

    original = builder.RedirectStream

    class SafeRedirectStream(original):  # type: ignore[misc, valid-type]
        """``RedirectStream`` that is a no-op unless the stream is the process's own."""

        def __enter__(self) -> None:
            self._active = _is_process_stream(self.stream)
            if self._active:
                super().__enter__()

        def __exit__(self, *exc: object) -> None:
            if self._active:
                super().__exit__(*exc)

    builder.RedirectStream = SafeRedirectStream
    _patched.add("bullet_safety_gym")


def import_dsrl() -> Any:
    """Import ``dsrl`` with both fixes applied, so every ``Offline*`` id is registered."""
    patch_safety_gymnasium()
    patch_bullet_safety_gym()
    import dsrl
    import dsrl.offline_bullet_safety_gym
    import dsrl.offline_safety_gymnasium  # noqa: F401  (registers the SafetyGym ids)

    return dsrl
