"""What retrofit's policy modules share: an action box and an observation standardiser.

``TanhGaussianPolicy``, ``DeterministicPolicy`` and ``VAEPolicy`` keep their spaces as attributes
and buffers (``observation_dim``, ``action_dim``, ``action_low``, ``action_high``, ``obs_mean``,
``obs_std``), so an exported module is self-contained. The buffer names are part of every saved
state dict; they are registered here, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from retrofit.scaling import safe_scale

POLICY_CLASSES: dict[str, type[nn.Module]] = {}
"""Every policy class retrofit can save and load, by class name (filled as classes are defined)."""


def register_policy_class(cls: type[nn.Module]) -> type[nn.Module]:
    """Let ``save_policy``/``load_policy`` handle ``cls`` (a class decorator; every ``BoxPolicy``
    subclass is registered on definition). The class needs ``config()`` and a constructor that
    takes that config's fields."""
    POLICY_CLASSES[cls.__name__] = cls
    return cls


class BoxPolicy(nn.Module):
    """Base module: bounds ``[action_low, action_high]`` and observation standardisation buffers.

    Subclasses register themselves in ``POLICY_CLASSES`` (``save_policy``/``load_policy`` read
    it), so a new policy class needs no edit elsewhere.
    """

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        register_policy_class(cls)

    def __init__(
        self,
        observation_dim: int,
        action_dim: int,
        action_low: Sequence[float] | np.ndarray,
        action_high: Sequence[float] | np.ndarray,
    ) -> None:
        super().__init__()
        low = torch.as_tensor(np.asarray(action_low, dtype=np.float32).reshape(action_dim))
        high = torch.as_tensor(np.asarray(action_high, dtype=np.float32).reshape(action_dim))
        if not torch.all(high > low):
            raise ValueError(f"action_high {high.tolist()} must exceed action_low {low.tolist()}")
        self.observation_dim = int(observation_dim)
        self.action_dim = int(action_dim)
        self.register_buffer("action_low", low)
        self.register_buffer("action_high", high)
        self.register_buffer("obs_mean", torch.zeros(observation_dim))
        self.register_buffer("obs_std", torch.ones(observation_dim))

    def box_config(self) -> dict[str, Any]:
        """The spaces' part of ``config()``: JSON-able dims and bounds."""
        return {
            "observation_dim": self.observation_dim,
            "action_dim": self.action_dim,
            "action_low": self.action_low.tolist(),
            "action_high": self.action_high.tolist(),
        }

    def set_observation_normalizer(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Set the observation standardisation (``retrofit.scaling.safe_scale`` on ``std``)."""
        std = safe_scale(std)
        self.obs_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.obs_std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def normalize_observations(self, obs: torch.Tensor) -> torch.Tensor:
        """``(obs − obs_mean) / obs_std`` in float32."""
        return (obs.float() - self.obs_mean) / self.obs_std
