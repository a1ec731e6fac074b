"""Read back what an offline W&B run wrote (tests only): the records of its ``run-ID.wandb`` file.

wandb 0.31 ships no reader for its offline files (``wandb sync`` uploads them), so this reads the
file's framing, LevelDB's log format behind a 7-byte header (``:W&B``, magic ``0xBEE1``, version
0): 32 KiB blocks of chunks, each ``crc32c (4) | length (2) | type (1) | data``, a record being one
FULL chunk or FIRST, MIDDLE..., LAST. Each record is parsed with wandb's own protobuf
``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
BLOCK = 32 * 1024
CHUNK_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[Any]:
    """The ``Record`` messages of a ``.wandb`` file, in the order written."""
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    assert data[:len(HEADER)] == HEADER, f"{path} is not a W&B run file"
    out, pending, pos = [], b"", len(HEADER)
    while pos + CHUNK_HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < CHUNK_HEADER:  # the block's tail is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + CHUNK_HEADER])
        chunk = data[pos + CHUNK_HEADER:pos + CHUNK_HEADER + length]
        pos += CHUNK_HEADER + length
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            out.append(record)
    return out


def name(item: Any) -> str:
    """An item's key: ``key``, or its ``nested_key`` parts joined as W&B shows them."""
    return item.key or ".".join(item.nested_key)


def run_files(wandb_dir: Path) -> list[Path]:
    """Every offline run file under ``wandb_dir`` (the ``dir`` the runs were made in), once
    wandb's service has written them out: ``run.finish()`` can return before the service has
    written a run's file, so this first waits for it with ``wandb.teardown()`` (the next
    ``wandb.init`` starts a new service)."""
    import wandb

    wandb.teardown()
    return sorted(Path(wandb_dir).glob("wandb/offline-run-*/run-*.wandb"))


def run_id(path: Path) -> str:
    """The W&B run id a ``.wandb`` file belongs to."""
    return next(r.run.run_id for r in records(path) if r.WhichOneof("record_type") == "run")


def history(path: Path) -> list[tuple[int, dict[str, float]]]:
    """``(step, {metric: value})`` per ``run.log`` call, W&B's own ``_``-keys left out."""
    rows = []
    for record in records(path):
        if record.WhichOneof("record_type") != "history":
            continue
        items = {name(item): json.loads(item.value_json) for item in record.history.item}
        step = int(items["_step"])
        rows.append((step, {k: v for k, v in items.items() if not k.startswith("_")}))
    return rows


def config(path: Path) -> dict[str, Any]:
    """The run config: the run record's, then each config update, wandb's ``_wandb`` left out."""
    out: dict[str, Any] = {}
    for record in records(path):
        kind = record.WhichOneof("record_type")
        updates = (record.run.config.update if kind == "run" else
                   record.config.update if kind == "config" else [])
        out.update({name(item): json.loads(item.value_json) for item in updates})
    out.pop("_wandb", None)
    return out
