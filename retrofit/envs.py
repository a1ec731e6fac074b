"""Create DSRL task environments and step them with one API.

Both simulator families are handled: bullet-safety-gym (cost in ``info["cost"]``) and
safety-gymnasium (its native ``step`` returns a 6-tuple with the cost in position 2; dsrl's
wrappers turn that into ``info["cost"]``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from retrofit._compat import import_dsrl
from retrofit.errors import EnvironmentError_
from retrofit.tasks import task_info


def make_env(task: str, **kwargs: Any) -> Any:
    """Return a gymnasium environment for a DSRL task id (``OfflineBallRun-v0``) or short name.

    The environment is dsrl's own ``Offline*`` environment, so ``get_dataset`` and
    ``get_normalized_score`` are available on ``env.unwrapped``; its time limit is DSRL's.
    """
    info = task_info(task)
    import_dsrl()
    import gymnasium as gym

    try:
        return gym.make(info.env_id, **kwargs)
    except Exception as exc:  # the simulators raise many kinds of errors
        raise EnvironmentError_(
            f"Could not create environment {info.env_id!r}: {exc}. Run scripts/setup.sh to install "
            "the tested simulator set (docs/installation.md)."
        ) from exc


def step_env(env: Any, action: np.ndarray) -> tuple[np.ndarray, float, float, bool, bool, dict]:
    """Step any supported environment; return ``(obs, reward, cost, terminated, truncated, info)``.

    Accepts the gymnasium 5-tuple with ``info["cost"]`` and safety-gymnasium's native 6-tuple
    ``(obs, reward, cost, terminated, truncated, info)``.
    """
    out = env.step(action)
    if len(out) == 6:
        obs, reward, cost, terminated, truncated, info = out
    elif len(out) == 5:
        obs, reward, terminated, truncated, info = out
        if "cost" not in info:
            raise EnvironmentError_(
                "The environment's step() returned no info['cost']: retrofit needs a safe-RL "
                "environment (bullet-safety-gym, safety-gymnasium or a dsrl Offline* id)."
            )
        cost = info["cost"]
    else:
        raise EnvironmentError_(
            f"env.step returned {len(out)} values; expected gymnasium's 5 or safety-gymnasium's 6."
        )
    return obs, float(reward), float(cost), bool(terminated), bool(truncated), info
