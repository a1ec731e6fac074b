"""``retrofit export`` never destroys a file (issue 22): an existing output only with
``--overwrite``, the input never, an unknown suffix or an unwritable place is one line, exit 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from retrofit.policies.gaussian import TanhGaussianPolicy
from retrofit.policies.io import save_policy


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "ref.pt"
    save_policy(TanhGaussianPolicy(3, 2, [-1.0, -1.0], [1.0, 1.0], hidden_sizes=(4,)), path)
    return path


def export(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
           *args: str) -> tuple[int, str]:
    """``retrofit export ARGS`` in this process: ``(exit status, stderr)``."""
    from retrofit.cli import main

    monkeypatch.setattr(sys, "argv", ["retrofit", "export", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0), capsys.readouterr().err
    return 0, capsys.readouterr().err


def refused(result: tuple[int, str], message: str) -> bool:
    code, err = result
    return code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err


def test_an_existing_output_is_replaced_only_with_overwrite(
        policy: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = policy.with_name("actor.pt")
    out.write_bytes(b"earlier export")
    assert refused(export(monkeypatch, capsys, str(policy), "--out", str(out)),
                   "already exists; pass --overwrite")
    assert out.read_bytes() == b"earlier export"
    assert export(monkeypatch, capsys, str(policy), "--out", str(out), "--overwrite")[0] == 0
    assert torch.jit.load(str(out))(torch.zeros(1, 3)).shape == (1, 2)


def test_the_input_is_never_the_output(policy: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    before = policy.read_bytes()
    (policy.parent / "sub").mkdir()
    os.link(policy, policy.parent / "linked.pt")
    for out in (policy, policy.parent / "sub" / ".." / "ref.pt", policy.parent / "linked.pt"):
        assert refused(export(monkeypatch, capsys, str(policy), "--out", str(out),
                              "--overwrite"), "is the input policy file"), out
    assert policy.read_bytes() == before


@pytest.mark.parametrize(("out", "extra", "message"), [
    ("policy.txt", [], "unknown suffix '.txt'; use .pt, .pth, .ts for TorchScript or .onnx"),
    ("policy", [], "unknown suffix '(none)'"),
    ("policy.onnx", ["--format", "torchscript"], "a torchscript file ends in .pt or .pth or .ts"),
    ("afile/policy.pt", [], "is a file, not a folder"),
])
def test_bad_outputs_are_one_line_and_write_nothing(
        policy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        out: str, extra: list[str], message: str) -> None:
    (policy.parent / "afile").write_text("a file")
    before = sorted(p.name for p in policy.parent.iterdir())
    assert refused(export(monkeypatch, capsys, str(policy), "--out",
                          str(policy.parent / out), *extra), message)
    assert sorted(p.name for p in policy.parent.iterdir()) == before


def test_an_unwritable_folder_is_one_line(policy: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert refused(export(monkeypatch, capsys, str(policy), "--out", "/proc/policy.pt"),
                   "cannot write in '/proc'")
    if os.geteuid() != 0:  # root writes into read-only folders
        locked = policy.parent / "ro"
        locked.mkdir()
        locked.chmod(0o555)
        assert refused(export(monkeypatch, capsys, str(policy), "--out",
                              str(locked / "policy.pt")), "cannot write in")
