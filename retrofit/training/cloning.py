"""Behaviour cloning by maximum likelihood, through the one training loop.

``train_bc`` (tanh-Gaussian) and ``train_bc_vae`` (BCQ VAE), both in ``retrofit.pretrain``,
differ only in the module they build and the negative log-likelihood they minimise; seeding,
observation standardisation, minibatch sampling, the finite-value guard and timing are here.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, TypeVar

import torch

from retrofit.device import get_device, make_adam, set_random_seed
from retrofit.errors import DataError
from retrofit.training.loop import run_steps
from retrofit.training.samplers import device_tensor, seeded_generator

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
    """Fit ``build(observation_dim, action_dim)`` to every transition of ``dataset`` by Adam on
    ``nll``.

    ``nll(policy, obs, act)`` returns the per-sample negative log-likelihood ``(B,)``. The
    module's observation standardiser is set from the dataset first. Minibatches of
    ``batch_size`` are drawn uniformly with replacement from a generator seeded by ``seed``
    (after ``set_random_seed(seed)``, which also seeds the initial weights). Returns the policy
    in eval mode with ``train_wall_clock_s`` set.
    """
    dev = get_device(device)
    set_random_seed(seed)
    obs = device_tensor(dataset.observations, dev)
    act = device_tensor(dataset.actions, dev)
    if len(obs) == 0:
        raise DataError(f"The {name} dataset is empty.")
    policy = build(obs.shape[1], act.shape[1]).to(dev)
    policy.set_observation_normalizer(  # type: ignore[operator]
        dataset.observations.mean(axis=0), dataset.observations.std(axis=0)
    )
    optimizer = make_adam(list(policy.parameters()), learning_rate)
    generator = seeded_generator(dev, seed)

    def update() -> dict[str, torch.Tensor]:
        idx = torch.randint(len(obs), (batch_size,), generator=generator, device=dev)
        loss = nll(policy, obs[idx], act[idx]).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach()}

    clock = SimpleNamespace(device=dev, steps_done=0, train_wall_clock_s=0.0)
    run_steps(clock, update, steps, desc=name.lower(), progress=progress)
    policy.train_wall_clock_s = clock.train_wall_clock_s  # type: ignore[assignment]
    return policy.eval()
