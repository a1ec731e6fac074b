"""TorchScript and ONNX exports reproduce ``act()`` outside retrofit, for every kind of policy.

The exported files are loaded in a fresh interpreter that imports only torch, numpy and
onnxruntime (the script checks that neither retrofit, SB3 nor d3rlpy was imported), and fed real
observations from the shipped BallRun data.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import d3rlpy
import numpy as np
import pytest
import stable_baselines3 as sb3
import torch
from d3rlpy.logging import NoopAdapterFactory
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
from typer.testing import CliRunner

from retrofit import Retrofitter
from retrofit.adapters import wrap
from retrofit.adapters.torch_module import TorchModuleAdapter
from retrofit.cli import app
from retrofit.data.dataset import TrajectoryDataset
from retrofit.data.shipped import default_dataset_path
from retrofit.envs import make_env
from retrofit.errors import ConfigError, PolicyError
from retrofit.export import FORMATS, export_onnx, export_policy, export_torchscript
from retrofit.policies.deterministic import DeterministicPolicy
from retrofit.policies.io import save_policy
from retrofit.policies.vae import VAEPolicy
from retrofit.pretrain import BCConfig, pretrain_reference
from tests.adapters import SHIFTED_HIGH, SHIFTED_LOW, ShiftedBox

TASK = "OfflineBallRun-v0"
LOW, HIGH = SHIFTED_LOW, SHIFTED_HIGH


@pytest.fixture(scope="module")
def data() -> TrajectoryDataset:
    return TrajectoryDataset.from_hdf5(default_dataset_path(TASK), task=TASK)


@pytest.fixture(scope="module")
def observations(data: TrajectoryDataset) -> np.ndarray:
    """Real observations: the first and the last 50 of the shipped data."""
    return np.concatenate([data.observations[:50], data.observations[-50:]])


def _prefine(data: TrajectoryDataset) -> torch.nn.Module:
    """A PREFINE policy as the demo makes it, with few steps: BC reference, then PREFINE."""
    reference = pretrain_reference(
        data, BCConfig(steps=30, hidden_sizes=(32, 32)), device="cpu", progress=False
    )
    preferred, nonpreferred = data.split_preferences(
        cost_threshold=20, n_preferred=20, n_nonpreferred=10, seed=0
    )
    return Retrofitter(reference, "prefine", device="cpu", progress=False).fit(
        preferred, nonpreferred, steps=5
    )


def _with_normalizer(policy: torch.nn.Module, data: TrajectoryDataset) -> torch.nn.Module:
    policy.set_observation_normalizer(data.observations.mean(0), data.observations.std(0))
    return policy


def _sb3(data: TrajectoryDataset) -> dict:
    torch.manual_seed(0)
    venv = VecNormalize(DummyVecEnv([lambda: make_env("BallRun")]), norm_reward=False)
    venv.obs_rms.mean = data.observations.mean(0).astype(np.float64)
    venv.obs_rms.var = data.observations.var(0).astype(np.float64) + 0.5
    shifted = ShiftedBox(make_env("BallRun"))

    def small() -> dict:  # SB3 edits the dict it is given
        return {"net_arch": [16]}

    return {
        "sb3-PPO-VecNormalize": sb3.PPO("MlpPolicy", venv, policy_kwargs=small(), device="cpu"),
        "sb3-SAC-shifted": sb3.SAC("MlpPolicy", shifted, policy_kwargs=small(), device="cpu"),
        "sb3-TD3-shifted": sb3.TD3("MlpPolicy", shifted, policy_kwargs=small(), device="cpu"),
    }


def _d3rlpy(data: TrajectoryDataset) -> dict:
    small = data.select_episodes(range(8))
    mdp = d3rlpy.dataset.MDPDataset(
        small.observations, small.actions, small.rewards, small.terminals,
        timeouts=small.timeouts,
    )
    enc = d3rlpy.models.VectorEncoderFactory(hidden_units=[16])
    scalers = {
        "observation_scaler": d3rlpy.preprocessing.StandardObservationScaler(),
        "action_scaler": d3rlpy.preprocessing.MinMaxActionScaler(),
    }
    configs = {
        "d3rlpy-BC": d3rlpy.algos.BCConfig(encoder_factory=enc, **scalers),
        "d3rlpy-CQL": d3rlpy.algos.CQLConfig(
            actor_encoder_factory=enc, critic_encoder_factory=enc, n_action_samples=2,
            batch_size=32, **scalers,
        ),
        "d3rlpy-IQL": d3rlpy.algos.IQLConfig(
            actor_encoder_factory=enc, critic_encoder_factory=enc, value_encoder_factory=enc,
            batch_size=32,
        ),
    }
    out = {}
    for name, config in configs.items():
        d3rlpy.seed(0)
        algo = config.create(device="cpu:0")
        algo.fit(
            mdp, n_steps=20, n_steps_per_epoch=20, show_progress=False,
            logger_adapter=NoopAdapterFactory(),
        )
        out[name] = algo
    return out


@pytest.fixture(scope="module")
def policies(data: TrajectoryDataset) -> dict:
    torch.manual_seed(0)
    observation_dim, action_dim = data.observation_dim, data.action_dim
    low, high = -np.ones(action_dim), np.ones(action_dim)
    return {
        "prefine": _prefine(data),
        "deterministic": _with_normalizer(
            DeterministicPolicy(observation_dim, action_dim, low, high, hidden_sizes=(16,)), data
        ),
        "vae": _with_normalizer(
            VAEPolicy(observation_dim, action_dim, low, high, hidden_sizes=(16,)), data
        ),
        "torch-module": TorchModuleAdapter(
            torch.nn.Sequential(torch.nn.Linear(observation_dim, action_dim), torch.nn.Tanh()),
            action_low=-0.5, action_high=0.5,
        ),
        **_sb3(data),
        **_d3rlpy(data),
    }


_OUTSIDE = """
import json, sys
import numpy as np
import onnxruntime
import torch

obs = np.load(sys.argv[1])
out = {}
for path in sys.argv[2:]:
    if path.endswith(".pt"):
        module = torch.jit.load(path)
        with torch.no_grad():
            out[path] = module(torch.from_numpy(obs)).numpy().tolist()
    else:
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        out[path] = session.run(["actions"], {"observations": obs})[0].tolist()
imported = sorted(m for m in ("retrofit", "stable_baselines3", "d3rlpy") if m in sys.modules)
print(json.dumps({"actions": out, "imported": imported}))
"""


def run_outside(obs: np.ndarray, paths: list[pathlib.Path], tmp: pathlib.Path) -> dict:
    """Actions of each exported file, computed in an interpreter without retrofit."""
    np.save(tmp / "obs.npy", obs.astype(np.float32))
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_OUTSIDE), str(tmp / "obs.npy"),
         *map(str, paths)],
        capture_output=True, text=True, timeout=300, cwd=tmp,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["imported"] == []
    return {pathlib.Path(p).name: np.asarray(a, np.float32) for p, a in result["actions"].items()}


@pytest.fixture(scope="module")
def exported(
    policies: dict, observations: np.ndarray, tmp_path_factory: pytest.TempPathFactory
) -> dict:
    tmp = tmp_path_factory.mktemp("export")
    paths = []
    for name, policy in policies.items():
        paths.append(export_torchscript(policy, tmp / f"{name}.pt", observations[:4]))
        paths.append(export_onnx(policy, tmp / f"{name}.onnx", observations[:4]))
    return run_outside(observations, paths, tmp)


NAMES = [
    "prefine", "deterministic", "vae", "torch-module", "sb3-PPO-VecNormalize", "sb3-SAC-shifted",
    "sb3-TD3-shifted", "d3rlpy-BC", "d3rlpy-CQL", "d3rlpy-IQL",
]


@pytest.mark.parametrize("fmt", ["pt", "onnx"])
@pytest.mark.parametrize("name", NAMES)
def test_export_reproduces_act_outside_retrofit(
    policies: dict, exported: dict, observations: np.ndarray, name: str, fmt: str
) -> None:
    adapter = wrap(policies[name])
    want = adapter.act(observations, deterministic=True)
    got = exported[f"{name}.{fmt}"]
    assert got.shape == want.shape == (len(observations), adapter.action_dim)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert np.all(got >= adapter.action_low) and np.all(got <= adapter.action_high)
    assert np.ptp(got, axis=0).max() > 1e-4  # the actions depend on the observation


def test_normalisation_is_inside_the_export(
    policies: dict, observations: np.ndarray, tmp_path: pathlib.Path
) -> None:
    """Changing the observation statistics changes the exported actions: they are baked in."""
    policy = policies["deterministic"]
    before = torch.jit.load(export_torchscript(policy, tmp_path / "a.pt"))
    shifted = DeterministicPolicy(**policy.config())
    shifted.load_state_dict(policy.state_dict())
    shifted.obs_std.mul_(3.0)
    after = torch.jit.load(export_torchscript(shifted, tmp_path / "b.pt"))
    obs = torch.from_numpy(observations)
    with torch.no_grad():
        assert not torch.allclose(before(obs), after(obs), atol=1e-3)


def test_cli_exports_retrofit_sb3_and_d3rlpy_files(
    policies: dict, observations: np.ndarray, tmp_path: pathlib.Path
) -> None:
    save_policy(policies["prefine"], tmp_path / "prefine.pt")
    runner = CliRunner()
    for fmt in FORMATS:
        out = tmp_path / f"cli-prefine.{'pt' if fmt == 'torchscript' else 'onnx'}"
        result = runner.invoke(
            app, ["export", str(tmp_path / "prefine.pt"), "--format", fmt, "--out", str(out)]
        )
        assert result.exit_code == 0, result.output
        assert out.is_file() and str(out) in result.output
    policies["sb3-SAC-shifted"].save(tmp_path / "sac.zip")
    zip_out = tmp_path / "cli-sac.onnx"
    result = runner.invoke(  # the format follows from the .onnx suffix
        app, ["export", str(tmp_path / "sac.zip"), "--algo", "sac", "--out", str(zip_out)]
    )
    assert result.exit_code == 0, result.output
    policies["d3rlpy-CQL"].save(str(tmp_path / "cql.d3"))
    d3_out = tmp_path / "cli-cql.pt"
    result = runner.invoke(app, ["export", str(tmp_path / "cql.d3"), "--out", str(d3_out)])
    assert result.exit_code == 0, result.output
    got = run_outside(
        observations,
        [tmp_path / "cli-prefine.pt", tmp_path / "cli-prefine.onnx", zip_out, d3_out],
        tmp_path,
    )
    want = wrap(policies["prefine"]).act(observations)
    np.testing.assert_allclose(got["cli-prefine.pt"], want, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got["cli-prefine.onnx"], want, atol=1e-5, rtol=0)
    want_sac = wrap(policies["sb3-SAC-shifted"]).act(observations)
    np.testing.assert_allclose(got["cli-sac.onnx"], want_sac, atol=1e-5, rtol=0)
    want_cql = wrap(policies["d3rlpy-CQL"]).act(observations)
    np.testing.assert_allclose(got["cli-cql.pt"], want_cql, atol=1e-5, rtol=0)


def test_errors_name_the_fix(policies: dict, tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match="format='tflite'"):
        export_policy(policies["prefine"], tmp_path / "x", "tflite")
    with pytest.raises(PolicyError, match=r"shape \(3,\)"):
        export_torchscript(policies["prefine"], tmp_path / "x.pt", np.zeros(3))
    stochastic = TorchModuleAdapter(_NormalModule(), observation_dim=4)
    with pytest.raises(PolicyError, match="no deterministic action"):
        export_onnx(stochastic, tmp_path / "x.onnx")
    result = CliRunner().invoke(app, ["export", str(tmp_path / "none.pt"), "--out", "y.pt"])
    assert isinstance(result.exception, PolicyError)
    assert "no such policy file" in str(result.exception)
    policies["sb3-SAC-shifted"].save(tmp_path / "s.zip")
    zipped = CliRunner().invoke(app, ["export", str(tmp_path / "s.zip"), "--algo", "ppo",
                                      "--out", str(tmp_path / "y.pt")])
    assert isinstance(zipped.exception, PolicyError), zipped.output
    assert "saved by SAC, not PPO" in str(zipped.exception)
    assert not (tmp_path / "y.pt").exists()
    assert not list(tmp_path.glob("*.tmp")) and not (tmp_path / "x.onnx").exists()


class _NormalModule(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 2)

    def forward(self, obs: torch.Tensor) -> torch.distributions.Distribution:
        return torch.distributions.Normal(self.linear(obs), 1.0)
