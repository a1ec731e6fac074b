"""The signal left when the user has preferences but no per-step cost.

With only ``D_p``/``D_np`` (episodes marked preferred / non-preferred) or segment preferences,
no cost is observed, so no estimate of the episode cost — and no check against κ — can be made
from the data: FQE needs the per-step cost it sums. What can be measured offline is how much the
policy still behaves like the non-preferred data: the mean log-likelihood it gives to held-out
non-preferred actions. Lower than the reference policy's means the retrofit moved away from the
unsafe behaviour; it is a relative signal (compare checkpoints, or against π_ref), on no cost
scale, and it says nothing about states the data never visit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from retrofit.device import get_device
from retrofit.errors import DataError

_BATCH = 4096


def nonpreferred_log_likelihood(
    policy: Any,
    nonpreferred: Any,
    device: str | torch.device = "auto",
    batch_size: int = _BATCH,
) -> float:
    """Mean ``log π(a|s)`` over the transitions of held-out non-preferred data ``D_np``.

    Args:
        policy: a ``PolicyAdapter`` or anything ``retrofit.adapters.wrap`` accepts (it needs
            ``log_prob``). It is not changed: a frozen copy is evaluated on ``device``.
        nonpreferred: a ``TrajectoryDataset`` of non-preferred episodes that training did not
            see (e.g. a held-out part of ``D_np``), or anything with ``observations`` and
            ``actions`` arrays.
        device: where the log-likelihood is computed (``"auto"``: CUDA when available).
        batch_size: transitions per forward pass.

    Returns:
        The mean log-likelihood per transition (nats; a density for continuous actions). Compare
        it between checkpoints or against the reference policy: lower means the policy is less
        likely to repeat the non-preferred behaviour.
    """
    from retrofit.adapters import wrap

    obs, act = _arrays(nonpreferred)
    adapter = wrap(policy).frozen_copy().to(get_device(device))
    adapter.train(False)
    total = 0.0
    with torch.no_grad():
        for lo in range(0, len(obs), batch_size):
            o = torch.as_tensor(obs[lo:lo + batch_size], device=adapter.device)
            a = torch.as_tensor(act[lo:lo + batch_size], device=adapter.device)
            total += float(adapter.log_prob(o, a).double().sum())
    return total / len(obs)


def _arrays(data: Any) -> tuple[np.ndarray, np.ndarray]:
    for field in ("observations", "actions"):
        if getattr(data, field, None) is None:
            raise DataError(
                f"nonpreferred has no {field!r} (got {type(data).__name__}): pass the held-out "
                "non-preferred episodes as a retrofit.TrajectoryDataset."
            )
    obs = np.asarray(data.observations, dtype=np.float32)
    act = np.asarray(data.actions, dtype=np.float32)
    if len(obs) == 0 or len(obs) != len(act):
        raise DataError(
            f"nonpreferred: {len(obs)} observations and {len(act)} actions; they must be equal "
            "and non-zero."
        )
    return obs, act
