"""Progress off a terminal: a line per tenth of the work, never tqdm's carriage-return redraws."""

import io
import os
import subprocess
import sys
from pathlib import Path

from retrofit.data.shipped import default_dataset_path
from retrofit.policies.clipped_gaussian import ClippedGaussianPolicy
from retrofit.policies.io import save_policy
from retrofit.progress import LineProgress, progress_bar

RETROFIT = str(Path(sys.executable).with_name("retrofit"))


def test_a_pipe_gets_one_line_per_tenth():
    out = io.StringIO()  # not a terminal
    with progress_bar(1000, "prefine", unit="step", file=out) as bar:
        assert isinstance(bar, LineProgress)
        for _ in range(1000):
            bar.update(1)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert len(lines) == 10 and lines[0].startswith("prefine:  10% 100/1000 step")
    assert lines[-1].startswith("prefine: 100% 1000/1000 step")


def test_small_totals_and_disable():
    out = io.StringIO()
    with progress_bar(3, "evaluate", unit="episode", file=out) as bar:
        bar.update(1)
        bar.update(2)
    assert len(out.getvalue().splitlines()) == 2  # 33 % then 100 %
    quiet = io.StringIO()
    with progress_bar(10, "x", disable=True, file=quiet) as bar:
        bar.update(10)
    assert quiet.getvalue() == ""


def test_retrofit_fit_with_stderr_piped_writes_no_carriage_returns(tmp_path):
    policy = ClippedGaussianPolicy(7, 2, [-1.0, -1.0], [1.0, 1.0], hidden_sizes=(8,),
                                   fixed_std=0.2)
    save_policy(policy, tmp_path / "policy.pt")
    result = subprocess.run(
        [RETROFIT, "fit", str(tmp_path / "policy.pt"),
         str(default_dataset_path("OfflineBallRun-v0")), "--cost-threshold", "20",
         "--steps", "300", "--out", str(tmp_path / "safe.pt"), "--device", "cpu"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("\r") == 0, result.stderr
    bar_lines = [line for line in result.stderr.splitlines() if line.startswith("prefine:")]
    assert 1 <= len(bar_lines) <= 11, result.stderr


def test_a_postfix_goes_on_the_following_lines_only():
    out = io.StringIO()
    with progress_bar(4, "train 2 PPO", unit="step", file=out) as bar:
        bar.update(2)
        bar.set_postfix_str("k=0.5")
        bar.update(2)
    first, second = out.getvalue().splitlines()
    assert first.endswith("step/s]") and second.endswith("step/s, k=0.5]")


def test_retrofit_collect_into_a_pipe_writes_lines_not_redraws(tmp_path):
    """Both of the collector's bars (PPO training, rollouts) write a line per tenth at most."""
    result = subprocess.run(
        [RETROFIT, "collect", "BallRun", "--out", str(tmp_path / "ballrun.hdf5"),
         "--collect-episodes", "12", "--train-steps", "64", "--penalties", "0,1",
         "--budgets", "", "--noise-levels", "0"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("\r") == 0, result.stderr
    lines = result.stderr.splitlines()
    for desc in ("train 2 PPO:", "collect:"):
        bar_lines = [line for line in lines if line.startswith(desc)]
        assert 1 <= len(bar_lines) <= 11, result.stderr
        assert " 100% " in bar_lines[-1], bar_lines
