"""Progress bars that suit where they are written: tqdm on a terminal, a few lines on a pipe.

tqdm redraws its bar with a carriage return several times a second; in a log file or a pipe
those redraws pile up (a thousand of them in one ``retrofit fit``). Off a terminal,
:func:`progress_bar` writes one plain line each time another tenth of the work is done.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any, Protocol


class ProgressBar(Protocol):
    """What retrofit's loops use of a progress bar (a subset of tqdm's API)."""

    def update(self, n: int = 1) -> Any:
        """Count ``n`` more units of work done."""

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> Any:
        """Show ``s`` after the counts (e.g. which run is training)."""

    def close(self) -> None:
        """Finish the bar."""

    def __enter__(self) -> ProgressBar: ...

    def __exit__(self, *exc: object) -> Any: ...


class LineProgress:
    """A progress report for a pipe or a file: one line per tenth of ``total``, no ``\\r``."""

    def __init__(self, total: int, desc: str, unit: str, file: IO[str], every: float = 0.1):
        self.total, self.desc, self.unit, self.file = int(total), desc, unit, file
        self.every = every
        self.n = 0
        self.postfix = ""
        self._shown = 0  # tenths already written
        self._start = time.perf_counter()

    def update(self, n: int = 1) -> None:
        """Count ``n`` more units; write a line when another tenth has been reached."""
        self.n += n
        if self.total <= 0:
            return
        reached = int(min(self.n, self.total) / self.total / self.every + 1e-9)
        if reached > self._shown:
            self._shown = reached
            elapsed = time.perf_counter() - self._start
            rate = self.n / elapsed if elapsed > 0 else 0.0
            postfix = f", {self.postfix}" if self.postfix else ""
            self.file.write(f"{self.desc}: {min(self.n / self.total, 1.0):4.0%} "
                            f"{self.n}/{self.total} {self.unit} [{elapsed:.1f} s, "
                            f"{rate:.1f} {self.unit}/s{postfix}]\n")
            self.file.flush()

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """Add ``s`` to the lines written from now on (tqdm's postfix; nothing is redrawn)."""
        self.postfix = s

    def close(self) -> None:
        """Nothing to erase: every line written is final."""

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _interactive(stream: IO[str]) -> bool:
    """A terminal, or a notebook (whose front end draws tqdm's widget)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty()) or "ipykernel" in sys.modules


def progress_bar(total: int, desc: str, *, unit: str = "it", disable: bool = False,
                 file: IO[str] | None = None) -> ProgressBar:
    """A tqdm bar on a terminal; off one (a pipe, a log file), a line per tenth of ``total``.

    ``disable=True`` shows nothing (tqdm's own switch); ``file`` defaults to stderr.
    """
    stream = sys.stderr if file is None else file
    if disable or _interactive(stream):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, disable=disable, file=file)
    return LineProgress(total, desc, unit, stream)
