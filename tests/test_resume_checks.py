"""A resume continues only the run its checkpoint was saved from (issue 22).

Real PREFINE fits of a few steps on the shipped BallRun data: a resume with another setting,
seed, method, data or policy is refused with one line naming each change; more steps is
allowed and recorded in ``config.json``, whose original settings are kept; the checkpoint
records the method's name and a digest that catches damaged bytes.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch

from retrofit import Retrofitter
from retrofit.data.dataset import TrajectoryDataset, action_bounds
from retrofit.data.shipped import default_dataset_path
from retrofit.errors import CheckpointError, ConfigError
from retrofit.policies.gaussian import TanhGaussianPolicy
from retrofit.training.checkpoint import CHECKPOINT_NAME, PREVIOUS_NAME, load_checkpoint

SETTINGS = {"steps": 4, "batch_size": 8, "checkpoint_every": 2, "progress": False,
            "device": "cpu"}


@pytest.fixture(scope="module")
def data() -> TrajectoryDataset:
    return TrajectoryDataset.from_hdf5(default_dataset_path("OfflineBallRun-v0"))


def make_policy(data: TrajectoryDataset, seed: int = 0) -> TanhGaussianPolicy:
    torch.manual_seed(seed)
    return TanhGaussianPolicy(data.observation_dim, data.action_dim, *action_bounds(data),
                              hidden_sizes=(8,))


def fit(policy: TanhGaussianPolicy, pairs: tuple, log_dir: Path, resume: bool = False,
        method: str = "prefine", **changes: object) -> Retrofitter:
    settings = {**SETTINGS, **changes}
    retrofitter = Retrofitter(policy, method, log_dir=log_dir, **settings)  # type: ignore[arg-type]
    retrofitter.fit(*pairs, resume=resume)
    return retrofitter


@pytest.fixture
def run(tmp_path: Path, data: TrajectoryDataset) -> tuple[TanhGaussianPolicy, tuple, Path]:
    """A finished 4-step PREFINE run in ``tmp_path/run``."""
    policy = make_policy(data)
    pairs = data.split_preferences(20.0, n_preferred=20, n_nonpreferred=5, seed=0)
    fit(policy, pairs, tmp_path / "run")
    return policy, pairs, tmp_path / "run"


@pytest.mark.parametrize(("changes", "named"), [
    ({"beta": 0.5}, "beta: 0.2 -> 0.5"),
    ({"batch_size": 16}, "batch_size: 8 -> 16"),
    ({"learning_rate": 1e-3}, "learning_rate:"),
    ({"seed": 1}, "seed: 0 -> 1"),
    ({"method": "dpo"}, "method: \"prefine\" -> \"dpo\""),
])
def test_a_resume_with_a_changed_setting_is_refused(
        run: tuple, changes: dict, named: str) -> None:
    policy, pairs, folder = run
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(ConfigError, match="the run changed since it was saved") as info:
        fit(policy, pairs, folder, resume=True, **changes)
    message = str(info.value)
    assert named in message and "--overwrite" in message and "\n" not in message
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing written


def test_a_resume_with_other_data_or_another_policy_is_refused(
        run: tuple, data: TrajectoryDataset) -> None:
    policy, pairs, folder = run
    other_split = data.split_preferences(20.0, n_preferred=20, n_nonpreferred=5, seed=1)
    with pytest.raises(ConfigError, match=r"data: sha256 \w{12}\.\.\. -> sha256"):
        fit(policy, other_split, folder, resume=True)
    with pytest.raises(ConfigError, match=r"policy: sha256 \w{12}\.\.\. -> sha256"):
        fit(make_policy(data, seed=1), pairs, folder, resume=True)


def test_more_steps_resume_and_are_recorded_without_losing_the_original_config(
        run: tuple) -> None:
    policy, pairs, folder = run
    original = json.loads((folder / "config.json").read_text())
    resumed = fit(policy, pairs, folder, resume=True, steps=6)
    assert resumed.trainer is not None and resumed.trainer.steps_done == 6
    config = json.loads((folder / "config.json").read_text())
    assert config == {**original, "resumes": [{"from_step": 4, "steps": 6}]}
    with pytest.raises(ConfigError, match="steps=3 is fewer than the 6 steps"):
        fit(policy, pairs, folder, resume=True, steps=3)


def test_the_checkpoint_records_the_method_name(run: tuple) -> None:
    _, _, folder = run
    payload = load_checkpoint(folder / CHECKPOINT_NAME)
    assert payload["position"]["method"] == "prefine"
    assert json.loads(payload["run"])["method"] == "prefine"


def _damage_a_weight(path: Path) -> None:
    """Change one parameter of the payload and save it again, still loadable by torch."""
    envelope = torch.load(path, weights_only=True)
    payload = torch.load(io.BytesIO(envelope["payload"].numpy().tobytes()), weights_only=True)
    weights = payload["objects"]["policy"]  # the adapter's parameters, in order
    weights[0] = weights[0] + 1.0
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    envelope["payload"] = torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8)
    torch.save(envelope, path)


def test_a_damaged_checkpoint_is_named_and_the_previous_one_offered(run: tuple) -> None:
    policy, pairs, folder = run
    _damage_a_weight(folder / CHECKPOINT_NAME)
    with pytest.raises(CheckpointError) as info:
        fit(policy, pairs, folder, resume=True)
    message = str(info.value)
    assert f"checkpoint {folder / CHECKPOINT_NAME} is corrupt" in message
    assert f"previous checkpoint {folder / PREVIOUS_NAME} (step 4) is intact" in message
    assert "diverged" not in message and "\n" not in message


def test_flipped_bytes_are_a_checkpoint_error_not_divergence(run: tuple) -> None:
    policy, pairs, folder = run
    path = folder / CHECKPOINT_NAME
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle:middle + 8] = bytes(b ^ 0xFF for b in raw[middle:middle + 8])
    path.write_bytes(bytes(raw))
    (folder / PREVIOUS_NAME).unlink()
    with pytest.raises(CheckpointError, match="start fresh with --overwrite") as info:
        fit(policy, pairs, folder, resume=True)
    assert "diverged" not in str(info.value)
