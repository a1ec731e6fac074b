"""``retrofit tasks | head``, ``retrofit --help | head``: a reader that goes away ends the
command quietly, status 0 (issue 25: the rich-formatted help used to exit 1)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

RETROFIT = str(Path(sys.executable).with_name("retrofit"))


@pytest.mark.parametrize("args", [["tasks"], ["methods"], ["--help"], ["compare", "--help"]])
def test_a_closed_pipe_exits_zero_without_a_message(args):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line: every write meets EPIPE
    try:
        result = subprocess.run([RETROFIT, *args], stdout=write_end, stderr=subprocess.PIPE,
                                text=True, timeout=60)
    finally:
        os.close(write_end)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_head_reads_the_first_line_and_the_pipeline_succeeds():
    result = subprocess.run(f"set -o pipefail; '{RETROFIT}' tasks | head -n 1", shell=True,
                            capture_output=True, text=True, timeout=60, executable="/bin/bash")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Offline") and len(result.stdout.splitlines()) == 1
    assert result.stderr == ""


def test_help_into_head_of_one_line_ends_the_pipeline_with_status_zero():
    result = subprocess.run(f"set -o pipefail; '{RETROFIT}' --help | head -1", shell=True,
                            capture_output=True, text=True, timeout=60, executable="/bin/bash")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    assert result.stderr == ""


def test_every_subcommand_prints_its_help_pipe_safely():
    """A new ``@app.command`` without ``cls=_Command`` would exit 1 on ``CMD --help | head``."""
    import typer.main

    from retrofit.cli import _PipeSafeHelp, app

    group = typer.main.get_command(app)
    assert isinstance(group, _PipeSafeHelp)
    commands = group.commands  # type: ignore[attr-defined]
    assert len(commands) == len(app.registered_commands) > 0
    unsafe = [name for name, command in commands.items()
              if not isinstance(command, _PipeSafeHelp)]
    assert not unsafe, f"give these @app.command(cls=_Command): {unsafe}"
