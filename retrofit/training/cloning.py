"""Behaviour cloning by maximum likelihood: the loop retrofit's BC policies share.

``train_bc`` (tanh-Gaussian, ``retrofit.pretrain``) and ``train_bc_vae`` (BCQ VAE,
``retrofit.policies.vae``) differ only in the module they build and the negative
log-likelihood they minimise; seeding, observation standardisation, minibatch sampling and
timing are here, once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch
from tqdm.auto import tqdm

from retrofit.device import get_device, make_adam, set_random_seed
from retrofit.errors import DataError

PolicyT = TypeVar("PolicyT", bound=torch.nn.Module)


def clone_by_likelihood(
    dataset: Any,
    build: Callable[[int, int], PolicyT],
    nll: Callable[[PolicyT, torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    steps: int,
    batch_size: int,
    learning_rate: float,
    device: str | torch.device = "auto",
    seed: int = 0,
    name: str = "BC",
    progress: bool = True,
) -> PolicyT:
    """Fit ``build(obs_dim, act_dim)`` to every transition of ``dataset`` by Adam on ``nll``.

    ``nll(policy, obs, act)`` returns the per-sample negative log-likelihood ``(B,)``. The
    module's observation standardiser is set from the dataset first. Minibatches of
    ``batch_size`` are drawn uniformly with replacement from a generator seeded by ``seed``
    (after ``set_random_seed(seed)``, which also seeds the initial weights). Returns the policy
    in eval mode with ``train_wall_clock_s`` set.
    """
    dev = get_device(device)
    set_random_seed(seed)
    obs = torch.as_tensor(np.asarray(dataset.observations, dtype=np.float32), device=dev)
    act = torch.as_tensor(np.asarray(dataset.actions, dtype=np.float32), device=dev)
    if len(obs) == 0:
        raise DataError(f"The {name} dataset is empty.")
    policy = build(obs.shape[1], act.shape[1]).to(dev)
    policy.set_observation_normalizer(  # type: ignore[operator]
        dataset.observations.mean(axis=0), dataset.observations.std(axis=0)
    )
    optimizer = make_adam(list(policy.parameters()), learning_rate)
    generator = torch.Generator(device=dev)
    generator.manual_seed(seed)
    start = time.perf_counter()
    for _ in tqdm(range(steps), disable=not progress, desc=name.lower(), unit="step"):
        idx = torch.randint(len(obs), (batch_size,), generator=generator, device=dev)
        loss = nll(policy, obs[idx], act[idx]).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    policy.train_wall_clock_s = time.perf_counter() - start  # type: ignore[assignment]
    return policy.eval()
