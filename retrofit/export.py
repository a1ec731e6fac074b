"""Deployable exports of a policy: TorchScript and ONNX, raw observations in, actions out.

The exported graph maps a ``(batch, observation_dim)`` float32 batch of *raw* observations (as the
environment returns them) to the ``(batch, action_dim)`` float32 action the policy takes when asked
to act deterministically, in the environment's units: every observation standardisation
(retrofit's ``obs_mean``/``obs_std`` buffers, SB3's ``VecNormalize`` statistics, d3rlpy's
observation scaler) and every action squashing and rescaling (tanh into the box, SB3's
``unscale_action``, d3rlpy's action scaler) is inside, followed by a clamp into
``[action_low, action_high]``. That is the adapter's ``act(obs, deterministic=True)``; the tests
check the two agree to 1e-5 with the file loaded without retrofit (``torch.jit.load``,
``onnxruntime.InferenceSession``).

Any policy ``retrofit.adapters.wrap`` accepts can be exported: retrofit's own modules
(``TanhGaussianPolicy``, ``DeterministicPolicy``, ``VAEPolicy``), SB3 PPO/A2C/SAC/TD3/DDPG models,
d3rlpy algorithms and plain torch modules that return an action tensor. The graph is traced
(``torch.jit.trace``; ONNX by the TorchScript-based exporter, ``dynamo=False``, which needs no
``onnxscript``), with a dynamic batch dimension.

``retrofit export`` checks its paths first (:func:`check_export_paths`): the output's suffix must
be one of :data:`SUFFIXES`, an existing output is replaced only with ``--overwrite``, and the input
policy file is never the output.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from retrofit.atomic import atomic_write
from retrofit.errors import ConfigError, PolicyError

FORMATS = ("torchscript", "onnx")
SUFFIXES = {"torchscript": (".pt", ".pth", ".ts"), "onnx": (".onnx",)}
"""Output suffixes of each format (``retrofit export`` refuses any other)."""
INPUT_NAME = "observations"
OUTPUT_NAME = "actions"
ONNX_OPSET = 17


class DeterministicActor(nn.Module):
    """``raw observations (B, O) -> clamp(deterministic action, low, high) (B, A)``.

    Holds a frozen, CPU, eval-mode copy of the adapter; the adapter's torch modules are
    registered as submodules so their weights are parameters of the exported graph.
    """

    def __init__(self, adapter: Any) -> None:
        super().__init__()
        if callable(getattr(adapter, "reset", None)):  # the memory hooks (adapters/base.py)
            raise PolicyError(
                f"{type(adapter).__name__} is a policy with memory (a decision transformer acts "
                "on its context window of returns-to-go, costs-to-go, states and actions), so "
                "there is no observations-in, action-out graph to export. Deploy it through "
                "retrofit (retrofit.evaluate, or act() with reset/observe per episode), or export "
                "a memoryless policy (e.g. one trained with method='bc-safe')."
            )
        frozen = adapter.frozen_copy().to("cpu")
        frozen.train(False)
        self.adapter = frozen
        for name, value in vars(frozen).items():
            if isinstance(value, nn.Module):
                self.add_module(f"policy_{name}", value)
        self.observation_dim = int(frozen.observation_dim)
        self.action_dim = int(frozen.action_dim)
        self.register_buffer("action_low", torch.as_tensor(frozen.action_low, dtype=torch.float32))
        self.register_buffer(
            "action_high", torch.as_tensor(frozen.action_high, dtype=torch.float32)
        )
        if getattr(frozen, "stochastic", False):
            raise PolicyError(
                f"{type(adapter).__name__} wraps a module returning a torch.distributions."
                "Distribution: there is no deterministic action to export as a traced graph. "
                "Export a module that returns the action mean (TorchModuleAdapter(mean_module))."
            )
        step = getattr(frozen, "deterministic_action", None) or getattr(frozen, "mean_action", None)
        if step is None:
            raise PolicyError(
                f"{type(adapter).__name__} has no deterministic action to export: an adapter needs "
                "deterministic_action(obs) or mean_action(obs) returning a tensor."
            )
        self._step = step

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """The deterministic environment action for a batch of raw observations."""
        action = self._step(observations).float()
        return torch.maximum(torch.minimum(action, self.action_high), self.action_low)


def deterministic_actor(policy: Any) -> DeterministicActor:
    """The exportable module of ``policy`` (anything ``retrofit.adapters.wrap`` accepts)."""
    from retrofit.adapters import wrap

    return DeterministicActor(wrap(policy))


def _example_batch(actor: DeterministicActor, example: np.ndarray | None) -> torch.Tensor:
    if example is None:
        return torch.zeros(2, actor.observation_dim)
    batch = torch.as_tensor(np.asarray(example, dtype=np.float32))
    if batch.dim() != 2 or batch.shape[1] != actor.observation_dim:
        raise PolicyError(
            f"example observations of shape {tuple(batch.shape)}; the policy takes "
            f"(batch, {actor.observation_dim}). Pass observations from the policy's task."
        )
    return batch


def _check_batch_independent(actor: DeterministicActor, run: Any, batch: torch.Tensor) -> None:
    """The traced graph must agree with the module on a batch of another size (dynamic batch)."""
    other = torch.cat([batch, batch[:1]], dim=0)
    with torch.no_grad():
        want = actor(other).numpy()
    got = np.asarray(run(other))
    if got.shape != want.shape or not np.allclose(got, want, atol=1e-5, rtol=1e-5):
        raise PolicyError(
            f"the exported graph of {type(actor.adapter).__name__} does not reproduce the policy "
            "on a batch of another size (its forward pass depends on the batch size in Python). "
            "Export a module whose action is a plain tensor function of the observations."
        )


def export_torchscript(
    policy: Any, path: str | os.PathLike[str], example_observations: np.ndarray | None = None
) -> Path:
    """Write ``policy``'s deterministic actor as TorchScript to ``path`` (atomically).

    Load it anywhere with ``torch.jit.load(path)`` and call it on a float32
    ``(batch, observation_dim)`` tensor of raw observations. ``example_observations`` (real ones
    are best) are used to trace.
    """
    actor = deterministic_actor(policy)
    batch = _example_batch(actor, example_observations)
    with torch.no_grad(), warnings.catch_warnings():
        # shape checks in the adapters are Python conditions the tracer warns about; the graph
        # is checked on a batch of another size right after
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        traced = torch.jit.trace(actor, (batch,), check_trace=False)
    _check_batch_independent(actor, lambda x: traced(x).numpy(), batch)
    return atomic_write(path, lambda tmp: torch.jit.save(traced, str(tmp)))


def export_onnx(
    policy: Any,
    path: str | os.PathLike[str],
    example_observations: np.ndarray | None = None,
    opset_version: int = ONNX_OPSET,
) -> Path:
    """Write ``policy``'s deterministic actor as ONNX to ``path`` (atomically).

    Input ``observations`` (float32, ``(batch, observation_dim)``, batch dynamic), output
    ``actions``.
    Run it with ``onnxruntime.InferenceSession(path).run(None, {"observations": obs})[0]``.
    """
    import onnx

    actor = deterministic_actor(policy)
    batch = _example_batch(actor, example_observations)

    def write(tmp: Path) -> None:
        with torch.no_grad(), warnings.catch_warnings():
            # the TorchScript-based exporter is deprecated in favour of the dynamo one, which
            # needs onnxscript; its output is the same ONNX graph for these models
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            torch.onnx.export(
                actor, (batch,), str(tmp), dynamo=False, opset_version=opset_version,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )
        onnx.checker.check_model(str(tmp))
        _check_batch_independent(actor, _onnx_runner(str(tmp)), batch)

    return atomic_write(path, write)


def _onnx_runner(path: str) -> Any:
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {INPUT_NAME: x.numpy()})[0]


def export_policy(
    policy: Any,
    path: str | os.PathLike[str],
    format: str | None = None,
    example_observations: np.ndarray | None = None,
) -> Path:
    """``export_torchscript`` or ``export_onnx`` by name (``format`` in ``FORMATS``).

    Without ``format``: ONNX for a path ending in ``.onnx``, TorchScript otherwise.
    """
    if format is None:
        format = "onnx" if Path(path).suffix.lower() == ".onnx" else "torchscript"
    if format == "torchscript":
        return export_torchscript(policy, path, example_observations)
    if format == "onnx":
        return export_onnx(policy, path, example_observations)
    raise ConfigError(f"format={format!r}: use one of {FORMATS}.")


def check_export_paths(policy_path: str | os.PathLike[str], out: str | os.PathLike[str],
                       format: str | None = None, overwrite: bool = False) -> str:
    """Check ``retrofit export``'s paths before any work; return the format to write.

    Raises :class:`ConfigError` for an unknown suffix or one of another format than ``format``,
    ``out`` equal to the input policy file (even with ``overwrite``), an existing ``out``
    without ``overwrite``, and an ``out`` that cannot be written (under a file, read-only).
    """
    from retrofit.outputs import check_output_file

    out = Path(out)
    by_suffix = {suffix: name for name, suffixes in SUFFIXES.items() for suffix in suffixes}
    suffix = out.suffix.lower()
    if suffix not in by_suffix:
        raise ConfigError(
            f"--out={str(out)!r}: unknown suffix {suffix or '(none)'!r}; use "
            f"{', '.join(SUFFIXES['torchscript'])} for TorchScript or .onnx for ONNX."
        )
    if format is not None and format not in FORMATS:
        raise ConfigError(f"--format {format!r}: use one of {', '.join(FORMATS)}.")
    if format is not None and by_suffix[suffix] != format:
        raise ConfigError(
            f"--format {format} but --out={str(out)!r} ends in {suffix}, a {by_suffix[suffix]} "
            f"suffix; a {format} file ends in {' or '.join(SUFFIXES[format])}."
        )
    source = Path(policy_path)
    if out.absolute().resolve() == source.absolute().resolve() or (
            out.exists() and source.exists() and os.path.samefile(out, source)):
        raise ConfigError(
            f"--out={str(out)!r} is the input policy file: exporting would destroy it. "
            "Choose another --out."
        )
    check_output_file(out, overwrite)
    return format or by_suffix[suffix]


def load_for_export(path: str | os.PathLike[str], algo: str | None = None) -> Any:
    """A policy file to export: retrofit ``.pt``, SB3 ``.zip`` (with ``algo``), d3rlpy ``.d3``."""
    from retrofit.policy_files import load_policy_file

    return load_policy_file(path, algo)
