"""Save and load retrofit's own policies without pickling objects.

A file holds a plain dict: format tag, library version, class name, JSON config, the state dict
and ``sha256``, a checksum of the class, config and every tensor's bytes. Loading uses
``torch.load(weights_only=True)`` and recomputes the checksum, so a file damaged on disk is a
:class:`~retrofit.errors.PolicyError`, never a policy with garbage weights. Writes are atomic
(temp file + rename).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from retrofit import __version__
from retrofit.atomic import atomic_torch_save
from retrofit.errors import PolicyError
from retrofit.policies.box import POLICY_CLASSES
from retrofit.policies.clipped_gaussian import ClippedGaussianPolicy
from retrofit.policies.decision_transformer import DecisionTransformer
from retrofit.policies.deterministic import DeterministicPolicy
from retrofit.policies.gaussian import TanhGaussianPolicy
from retrofit.policies.vae import VAEPolicy

_FORMAT = "retrofit-policy-v1"
RetrofitPolicy = (TanhGaussianPolicy | VAEPolicy | DeterministicPolicy | ClippedGaussianPolicy
                  | DecisionTransformer)


def state_checksum(class_name: str, config: Mapping[str, Any],
                   state_dict: Mapping[str, torch.Tensor]) -> str:
    """sha256 hex digest of the class name, the JSON config and every tensor (name, dtype,
    shape and bytes, in sorted name order)."""
    digest = hashlib.sha256()
    digest.update(class_name.encode())
    digest.update(json.dumps(dict(config), sort_keys=True, default=str).encode())
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"\n{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes()
                      if tensor.numel() else b"")
    return digest.hexdigest()


_RENAMED_CONFIG_KEYS = {"obs_dim": "observation_dim", "act_dim": "action_dim"}
"""Constructor arguments renamed since policy files were first written: old name -> new name."""


def _current_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A stored policy config with every renamed key under its current name.

    Files saved before the glossary rename (issue 23) hold ``obs_dim``/``act_dim``; the policies
    now take ``observation_dim``/``action_dim``. This is the only place the old names are read:
    :func:`load_policy` checks the checksum on the config as stored, then builds the policy from
    this one.
    """
    return {_RENAMED_CONFIG_KEYS.get(key, key): value for key, value in config.items()}


def _non_finite(state_dict: Mapping[str, torch.Tensor]) -> list[str]:
    return [name for name, t in state_dict.items()
            if t.is_floating_point() and not bool(torch.isfinite(t).all())]


def _import_policy_modules() -> None:
    """Import every module of ``retrofit.policies`` so each policy class has registered."""
    import pkgutil
    from importlib import import_module

    import retrofit.policies as package

    for info in pkgutil.iter_modules(package.__path__):
        import_module(f"{package.__name__}.{info.name}")


def save_policy(policy: RetrofitPolicy, path: str | Path) -> Path:
    """Atomically write ``policy`` (config + state dict + checksum) to ``path``; return the path.

    A policy with NaN/inf parameters is refused (:class:`PolicyError`): it would load as a
    policy that acts NaN.
    """
    if type(policy).__name__ not in POLICY_CLASSES:
        raise PolicyError(
            f"save_policy writes retrofit's own policies ({', '.join(POLICY_CLASSES)}); for a "
            f"{type(policy).__name__} use its library's own save (e.g. SB3 model.save)."
        )
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in policy.state_dict().items()}
    bad = _non_finite(state)
    if bad:
        raise PolicyError(
            f"policy: parameter(s) {bad[:5]} hold NaN or inf; not saving to {str(path)!r}. "
            "Training diverged: lower the learning rate or check the data, then fit again."
        )
    config = policy.config()
    payload = {
        "format": _FORMAT,
        "retrofit_version": __version__,
        "class": type(policy).__name__,
        "config": config,
        "state_dict": state,
        "sha256": state_checksum(type(policy).__name__, config, state),
    }
    atomic_torch_save(path, payload)
    return path


def load_policy(path: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load a policy written by ``save_policy`` (``weights_only=True``: no code is unpickled).

    The stored checksum is verified; a mismatch (the file changed on disk) is a
    :class:`PolicyError`. Files from before checksums load with a ``UserWarning``.
    """
    path = Path(path)
    if not path.is_file():
        raise PolicyError(f"path={str(path)!r}: no such policy file.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        raise PolicyError(
            f"{path} is not a retrofit policy file ({type(exc).__name__}). retrofit's own policies "
            "are written by save_policy; load SB3/d3rlpy models with their library and pass them "
            "to Retrofitter in Python."
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise PolicyError(f"{path} is not a retrofit policy file (format tag {_FORMAT!r} missing).")
    _import_policy_modules()
    cls = POLICY_CLASSES.get(payload.get("class"))  # type: ignore[arg-type]
    if cls is None:
        raise PolicyError(f"{path}: unknown policy class {payload.get('class')!r}.")
    state = payload.get("state_dict")
    config = payload.get("config")
    if not isinstance(state, dict) or not isinstance(config, dict):
        raise PolicyError(f"{path}: the file lacks its state_dict or config; save it again.")
    stored = payload.get("sha256")
    if stored is None:
        warnings.warn(
            f"{path} has no checksum (written before retrofit stored one); it cannot be checked "
            "for damage. Save it again with save_policy to add one.",
            UserWarning,
            stacklevel=2,
        )
    elif state_checksum(payload["class"], config, state) != stored:
        raise PolicyError(
            f"{path}: checksum mismatch (sha256 of its tensors differs from the one saved with "
            "them): the file was damaged or edited after saving. Restore it from a backup or "
            "train and save the policy again."
        )
    bad = _non_finite(state)
    if bad:
        raise PolicyError(f"{path}: parameter(s) {bad[:5]} hold NaN or inf; train it again.")
    try:
        policy = cls(**_current_config(config))
        policy.load_state_dict(state)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise PolicyError(f"{path}: config and weights do not fit {cls.__name__} ({exc}).") from exc
    return policy.to(device).eval()


def _policy_dims(policy: Any) -> tuple[int | None, int | None]:
    observation_dim = getattr(policy, "observation_dim", None)
    action_dim = getattr(policy, "action_dim", None)
    return (None if observation_dim is None else int(observation_dim),
            None if action_dim is None else int(action_dim))


def check_policy_matches_data(adapter: Any, dataset: Any) -> None:
    """Raise :class:`PolicyError` unless the policy's observation/action sizes equal the data's.

    ``adapter`` is a :class:`~retrofit.adapters.base.PolicyAdapter` or one of retrofit's own
    policies (both have ``observation_dim`` and ``action_dim``); ``dataset`` a
    :class:`~retrofit.data.TrajectoryDataset` or anything holding one as ``.dataset`` (PreSa's
    feedback). Call it before the first training step: a mismatch otherwise surfaces as a
    shape error deep inside torch.
    """
    data = dataset if hasattr(dataset, "observation_dim") else getattr(dataset, "dataset", None)
    if data is None or not hasattr(data, "observation_dim"):
        raise PolicyError(
            f"dataset: a {type(dataset).__name__} has no observation_dim/action_dim to check the "
            "policy against; pass a TrajectoryDataset (or feedback holding one)."
        )
    observation_dim, action_dim = _policy_dims(adapter)
    if observation_dim is None or action_dim is None:
        raise PolicyError(
            f"policy: a {type(adapter).__name__} has no observation_dim/action_dim; wrap it with "
            "retrofit.adapters.wrap(policy) first."
        )
    for what, mine, theirs in (("observation", observation_dim, data.observation_dim),
                               ("action", action_dim, data.action_dim)):
        if mine != theirs:
            raise PolicyError(
                f"{what}_dim: the policy takes {what}s of size {mine} but the data's are of size "
                f"{theirs} (task {data.task!r}). Use a policy trained on this task, or data "
                "collected with this policy's environment."
            )
