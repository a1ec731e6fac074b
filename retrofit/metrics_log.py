"""Per-step training metrics behind one interface: a logger protocol whose default writes
nothing, a CSV logger (the default file output), a TensorBoard logger (``--log tensorboard``) and,
in :mod:`retrofit.wandb_log`, a Weights & Biases logger (``--log wandb``);
:mod:`retrofit.log_formats` makes the one a format names.

Metrics arrive as dicts of 0-d tensors. The file loggers keep them on the device and move them to
the host in one transfer every ``flush_every`` steps, so logging every step adds no per-step
device synchronisation. A fit with several stages (e.g. SafeDICE's discriminator, then its main
stage) logs different names per stage: the CSV grows a column when a new name appears, and
earlier rows leave it empty.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Protocol

import torch

from retrofit.atomic import atomic_write, atomic_write_text
from retrofit.errors import ConfigError


class MetricsLogger(Protocol):
    """Receives one dict of scalar metrics per training step.

    A logger may also have ``write_params(params)``: the trainer then hands it the run's
    settings (method, seed, steps and every config field) once, before the first step
    (d3rlpy's ``LoggerAdapter.write_params``); :class:`TensorBoardLogger` writes them as hparams.
    """

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

    def flush(self) -> None:
        """Nothing to write."""

    def close(self) -> None:
        """Nothing to release."""


class BufferedLogger:
    """Base of the file loggers: buffers device tensors and hands them to ``_write`` as floats
    every ``flush_every`` steps."""

    def __init__(self, flush_every: int) -> None:
        self.flush_every = flush_every
        self._buffer: list[tuple[int, list[str], torch.Tensor]] = []

    def log(self, step: int, metrics: dict[str, torch.Tensor]) -> None:
        """Buffer the step's metrics; write them out every ``flush_every`` steps."""
        keys = list(metrics)
        values = torch.stack([metrics[k].detach().float().reshape(()) for k in keys])
        self._buffer.append((step, keys, values))
        if len(self._buffer) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        """Write buffered rows to disk (one host transfer)."""
        if not self._buffer:
            return
        if len({len(keys) for _, keys, _ in self._buffer}) == 1:
            host = torch.stack([values for *_, values in self._buffer]).cpu().tolist()
        else:  # a stage boundary inside the buffer: rows of different lengths
            host = [values.cpu().tolist() for *_, values in self._buffer]
        rows = [(step, dict(zip(keys, floats, strict=True)))
                for (step, keys, _), floats in zip(self._buffer, host, strict=True)]
        self._buffer = []
        self._write(rows)

    def _write(self, rows: list[tuple[int, dict[str, float]]]) -> None:
        raise NotImplementedError


class CSVLogger(BufferedLogger):
    """One CSV row per step (``step`` column first) in ``path``.

    ``resume_step``: continue a file written by an interrupted run — rows after that step (logged
    after the last checkpoint) and a torn last row (a kill in the middle of a write) are dropped
    in one atomic rewrite, the rest kept, new rows appended. Without it an
    existing non-empty file is refused unless ``overwrite=True``: a finished run's metrics are
    never truncated by accident.
    """

    def __init__(self, path: str | Path, flush_every: int = 200, *,
                 resume_step: int | None = None, overwrite: bool = False) -> None:
        super().__init__(flush_every)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._keys: list[str] = []
        exists = self.path.exists() and self.path.stat().st_size > 0
        if resume_step is not None and exists:
            header, rows = self._read()
            kept = [r for r in rows if r and int(float(r[0])) <= resume_step]
            self._keys = header[1:]
            self._rewrite(header, kept)
        elif exists and not overwrite:
            raise ConfigError(
                f"{self.path} already holds metrics of an earlier run: resume it, choose another "
                "folder, or pass overwrite=True (--overwrite) to replace it."
            )
        else:
            atomic_write_text(self.path, "")
        self._file = self.path.open("a", newline="")
        self._writer = csv.writer(self._file)

    def _read(self) -> tuple[list[str], list[list[str]]]:
        text = self.path.read_text()
        if not text.endswith("\n"):  # a row cut short by a kill: its step may be a prefix
            text = text[:text.rfind("\n") + 1]
        rows = list(csv.reader(io.StringIO(text, newline="")))
        return (rows[0], rows[1:]) if rows else ([], [])

    def _rewrite(self, header: list[str], rows: list[list[str]]) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        width = len(header)
        writer.writerows(r + [""] * (width - len(r)) for r in rows)
        atomic_write_text(self.path, buffer.getvalue())

    def _write(self, rows: list[tuple[int, dict[str, float]]]) -> None:
        new = [k for _, m in rows for k in m if k not in self._keys]
        if new:
            self._file.close()
            old_keys = self._keys
            self._keys = old_keys + list(dict.fromkeys(new))
            _, existing = self._read() if old_keys else ([], [])
            self._rewrite(["step", *self._keys], existing)
            self._file = self.path.open("a", newline="")
            self._writer = csv.writer(self._file)
        for step, metrics in rows:
            self._writer.writerow([step, *(f"{metrics[k]:.6g}" if k in metrics else ""
                                           for k in self._keys)])
        self._file.flush()

    def close(self) -> None:
        """Flush and close the file."""
        self.flush()
        self._file.close()


def _hparam(value: object) -> bool | int | float | str:
    """A setting as TensorBoard's hparams accept it: numbers and text as they are, the rest as
    JSON text (tuples, None)."""
    if isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, default=str)


class TensorBoardLogger(BufferedLogger):
    """Scalars for TensorBoard (``tensorboard --logdir DIR``), one tag per metric name, and the
    run's settings as hparams (the HPARAMS tab, with every logged metric beside them).

    ``resume_step``: continue the events of an interrupted run — the events logged after that
    step are removed from the existing event files (each rewritten atomically) and the new writer
    starts with TensorBoard's ``purge_step``, so every step is in the files once. Without it,
    event files already in ``log_dir`` are refused unless ``overwrite=True``, which removes them.
    """

    def __init__(self, log_dir: str | Path, flush_every: int = 200, *,
                 resume_step: int | None = None, overwrite: bool = False) -> None:
        super().__init__(flush_every)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # tensorboard is a pinned dependency; say so if it is gone
            raise ConfigError(
                "--log tensorboard needs the tensorboard package (pip install tensorboard)."
            ) from exc
        log_dir = Path(log_dir)
        existing = sorted(log_dir.glob(_EVENTS_GLOB))
        if resume_step is None and existing and not overwrite:
            raise ConfigError(
                f"{log_dir} already holds TensorBoard events of an earlier run "
                f"({existing[0].name}): resume it, choose another folder, or pass "
                "overwrite=True (--overwrite) to replace them."
            )
        for events in existing:
            if resume_step is None:  # overwrite: the earlier run's hparams go too
                events.unlink()
            else:
                _drop_events_after(events, resume_step)
        purge = None if resume_step is None else resume_step + 1
        self._writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge)
        self._metric_names: dict[str, None] = {}
        self._params: dict[str, bool | int | float | str] | None = None

    def write_params(self, params: dict[str, object]) -> None:
        """Write the run's settings as TensorBoard hparams (its session-start record)."""
        from torch.utils.tensorboard.summary import hparams

        self._params = {key: _hparam(value) for key, value in params.items()}
        _, start, _ = hparams(self._params, {})
        self._writer.file_writer.add_summary(start)  # type: ignore[union-attr]

    def _write(self, rows: list[tuple[int, dict[str, float]]]) -> None:
        for step, metrics in rows:
            for key, value in metrics.items():
                self._writer.add_scalar(key, value, step)
                self._metric_names.setdefault(key)
        self._writer.flush()

    def close(self) -> None:
        """Flush; with hparams, write the experiment (settings and every logged metric's name;
        written once, since TensorBoard keeps the first) and end the session; close."""
        self.flush()
        if self._params is not None:
            from torch.utils.tensorboard.summary import hparams

            experiment, _, end = hparams(self._params, dict.fromkeys(self._metric_names, 0.0))
            for summary in (experiment, end):
                self._writer.file_writer.add_summary(summary)  # type: ignore[union-attr]
        self._writer.close()


_EVENTS_GLOB = "events.out.tfevents.*"


def _drop_events_after(path: Path, step: int) -> None:
    """Rewrite the event file ``path`` without its events of steps after ``step`` (and without a
    torn last record); a file left with no scalar events is removed. Untouched if nothing goes."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.summary.writer.record_writer import RecordWriter

    records = list(RawEventFileLoader(str(path)).Load())
    kept = [r for r in records if Event.FromString(r).step <= step]
    if not any(Event.FromString(r).HasField("summary") for r in kept):
        path.unlink()
        return
    size = sum(len(r) + 16 for r in records)  # 12 bytes of header and 4 of footer per record
    if len(kept) == len(records) and size == path.stat().st_size:
        return

    def write(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            writer = RecordWriter(fh)
            for record in kept:
                writer.write(record)

    atomic_write(path, write)
