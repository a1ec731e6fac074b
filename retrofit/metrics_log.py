"""Per-step training metrics: a logger protocol whose default writes nothing, and a CSV logger.

Metrics arrive as dicts of 0-d tensors. The CSV logger keeps them on the device and moves them to
the host in one transfer every ``flush_every`` steps, so logging every step adds no per-step
device synchronisation.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Protocol

import torch


class MetricsLogger(Protocol):
    """Receives one dict of scalar metrics per training step."""

    def log(self, step: int, metrics: dict[str, torch.Tensor]) -> None:
        """Record the metrics of ``step``."""
        ...

    def close(self) -> None:
        """Flush and release resources."""
        ...


class NullLogger:
    """The default logger: writes nothing."""

    def log(self, step: int, metrics: dict[str, torch.Tensor]) -> None:
        """Discard the metrics."""

    def close(self) -> None:
        """Nothing to release."""


class CSVLogger:
    """Append one CSV row per step (``step`` column first) to ``path``."""

    def __init__(self, path: str | Path, flush_every: int = 200) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.flush_every = flush_every
        self._steps: list[int] = []
        self._rows: list[torch.Tensor] = []
        self._keys: list[str] | None = None
        self._file = self.path.open("w", newline="")
        self._writer = csv.writer(self._file)

    def log(self, step: int, metrics: dict[str, torch.Tensor]) -> None:
        """Buffer the step's metrics; write them out every ``flush_every`` steps."""
        if self._keys is None:
            self._keys = list(metrics)
            self._writer.writerow(["step", *self._keys])
        self._steps.append(step)
        self._rows.append(torch.stack([metrics[k].detach().float() for k in self._keys]))
        if len(self._rows) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        """Write buffered rows to disk."""
        if not self._rows:
            return
        values = torch.stack(self._rows).cpu().tolist()
        for step, row in zip(self._steps, values, strict=True):
            self._writer.writerow([step, *(f"{v:.6g}" for v in row)])
        self._file.flush()
        self._steps, self._rows = [], []

    def close(self) -> None:
        """Flush and close the file."""
        self.flush()
        self._file.close()
