"""Which stable-baselines3 algorithm saved a ``.zip``, read from the file without unpickling it.

``model.save`` writes a zip whose ``data`` member is JSON: every attribute of the model, each
algorithm's own hyper-parameters among them (the policy class is there too, but PPO and A2C share
``ActorCriticPolicy``, and its readable form is only text beside a pickle). The hyper-parameters
name the algorithm: PPO records ``n_epochs`` and
``clip_range``, SAC ``target_entropy``, TD3 and DDPG ``policy_delay``, A2C ``n_steps`` without
PPO's fields. DDPG is TD3 with one policy delay and no target noise clip; both load the same
file identically, so either name is accepted for it.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from retrofit.errors import ConfigError, PolicyError

SB3_ALGOS = ("PPO", "A2C", "SAC", "TD3", "DDPG")

# Algorithms that load one another's files identically (DDPG is a TD3 with fixed settings).
_SAME_FILES = {"TD3": {"TD3", "DDPG"}, "DDPG": {"TD3", "DDPG"}}


def read_sb3_data(path: str | Path) -> dict[str, Any]:
    """The ``data`` JSON of an SB3 ``.zip`` (a ``PolicyError`` naming the file if it is none)."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise PolicyError(
            f"{path} is not a zip archive, so not a stable-baselines3 model (save one with "
            "model.save('policy.zip')); a retrofit policy is a .pt file, a d3rlpy one a .d3 file."
        )
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data"))
    except (KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise PolicyError(
            f"{path} is a zip archive but not a stable-baselines3 model: its 'data' member is "
            f"missing or not JSON ({exc})."
        ) from exc
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: its 'data' member is not a JSON object of model settings.")
    return data


def recorded_algo(path: str | Path) -> str | None:
    """The algorithm (one of ``SB3_ALGOS``) that saved the SB3 ``.zip`` at ``path``, or None.

    None means the file's settings match none of them (another library built on SB3, say).
    """
    data = read_sb3_data(path)
    if "target_entropy" in data:
        return "SAC"
    if "policy_delay" in data:
        ddpg = data.get("policy_delay") == 1 and data.get("target_noise_clip") == 0.0
        return "DDPG" if ddpg else "TD3"
    if "n_epochs" in data or "clip_range" in data:
        return "PPO"
    if "n_steps" in data:
        return "A2C"
    return None


def resolve_algo(path: str | Path, algo: str | None) -> str:
    """The SB3 class to load ``path`` with: the recorded one, checked against ``algo`` if given.

    A mismatch (``--algo A2C`` for a PPO file) is refused in one line naming both.
    """
    wanted = None if algo is None else algo.upper()
    if wanted is not None and wanted not in SB3_ALGOS:
        raise ConfigError(f"algo={algo!r} is not a stable-baselines3 algorithm retrofit loads: "
                          f"use one of {', '.join(SB3_ALGOS)} (or leave it out).")
    found = recorded_algo(path)
    if found is None:
        if wanted is None:
            raise ConfigError(
                f"{path}: the algorithm that saved it cannot be read from the file; say which "
                f"with --algo ({', '.join(SB3_ALGOS)})."
            )
        return wanted
    if wanted is not None and wanted not in _SAME_FILES.get(found, {found}):
        raise PolicyError(
            f"{path} was saved by {found}, not {wanted} (--algo {algo}): pass --algo {found} or "
            "leave --algo out to use the algorithm recorded in the file."
        )
    return wanted or found
