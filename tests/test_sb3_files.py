"""An SB3 ``.zip`` loads through the algorithm recorded in it; a contrary ``--algo`` is refused.

Real (untrained) SB3 models on Pendulum are saved and read back; the CLI cases run the installed
``retrofit`` command and expect one ``error:`` line, not a traceback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import stable_baselines3 as sb3

from retrofit.data.shipped import default_dataset_path
from retrofit.errors import ConfigError, PolicyError
from retrofit.policy_files import load_policy_file
from retrofit.sb3_files import recorded_algo, resolve_algo

RETROFIT = str(Path(sys.executable).with_name("retrofit"))
OFF_POLICY = {"buffer_size": 100}
SETTINGS = {"PPO": {"n_steps": 8, "batch_size": 8}, "A2C": {"n_steps": 8}, "SAC": OFF_POLICY,
            "TD3": OFF_POLICY, "DDPG": OFF_POLICY}


@pytest.fixture(scope="module")
def zips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("sb3")
    out = {}
    for name, kwargs in SETTINGS.items():
        model = getattr(sb3, name)("MlpPolicy", "Pendulum-v1", device="cpu", seed=0,
                                   policy_kwargs={"net_arch": [8]}, **kwargs)
        out[name] = folder / f"{name.lower()}.zip"
        model.save(out[name])
    return out


@pytest.mark.parametrize("name", list(SETTINGS))
def test_the_recorded_algorithm_is_read_from_the_file(zips, name):
    assert recorded_algo(zips[name]) == name
    assert resolve_algo(zips[name], None) == name
    assert resolve_algo(zips[name], name.lower()) == name


def test_algo_is_optional_and_a_mismatch_is_refused(zips):
    model = load_policy_file(zips["PPO"])
    assert type(model) is sb3.PPO
    with pytest.raises(PolicyError, match="saved by PPO, not A2C"):
        load_policy_file(zips["PPO"], "A2C")
    with pytest.raises(PolicyError, match="saved by A2C, not PPO"):
        load_policy_file(zips["A2C"], "ppo")
    assert type(load_policy_file(zips["TD3"], "DDPG")) is sb3.DDPG  # the same file format
    with pytest.raises(ConfigError, match="algo='XYZ'"):
        load_policy_file(zips["PPO"], "XYZ")


def test_a_file_that_is_not_a_zip_is_named(tmp_path):
    fake = tmp_path / "policy.zip"
    fake.write_text("not a zip")
    with pytest.raises(PolicyError, match="not a zip archive"):
        load_policy_file(fake)


def _fit(policy: Path, *extra: str, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [RETROFIT, "fit", str(policy), str(default_dataset_path("OfflineBallRun-v0")),
         "--cost-threshold", "20", "--steps", "1", "--out", str(out), "--quiet", *extra],
        capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize(("algo", "want"), [("SAC", "saved by PPO, not SAC"),
                                            ("A2C", "saved by PPO, not A2C")])
def test_cli_fit_refuses_the_wrong_algo_in_one_line(zips, tmp_path, algo, want):
    result = _fit(zips["PPO"], "--algo", algo, out=tmp_path / "safe.zip")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and want in lines[0], result.stderr
    assert not (tmp_path / "safe.zip").exists()


def test_cli_fit_names_a_zip_that_is_not_one(tmp_path):
    fake = tmp_path / "policy.zip"
    fake.write_bytes(b"PK but not really")
    result = _fit(fake, out=tmp_path / "safe.zip")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "not a zip archive" in lines[0]
