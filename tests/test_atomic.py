"""``atomic_write_text``: whole file or old file, folder created, no temp file left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrofit.atomic import atomic_write_text


def test_writes_replaces_and_creates_the_folder(tmp_path: Path) -> None:
    path = atomic_write_text(tmp_path / "a" / "b.json", "one")
    assert path.read_text() == "one"
    atomic_write_text(path, "two")
    assert path.read_text() == "two" and sorted(p.name for p in path.parent.iterdir()) == ["b.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    path = atomic_write_text(tmp_path / "b.json", "old")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(path, "\udcff")  # a lone surrogate cannot be encoded
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["b.json"]
