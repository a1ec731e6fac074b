"""Adapter for retrofit's BCQ-style ``VAEPolicy`` (PREFINE's reference policy class).

``log π(a|s)`` is the ELBO surrogate ``-(||a - dec(s, z)||² + β_KL · KL(q(z|s,a) || N(0, I)))``
with ``z ~ q(z|s, a)`` reparameterised, so it is itself random. Sampling is
BCQ's: ``dec(s, z)``, ``z ~ N(0, I)`` clipped to ±0.5; the deterministic action is ``dec(s, 0)``.
``export()`` returns the module (save ``state_dict()`` with ``config()``).
"""

from __future__ import annotations

import torch

from retrofit.adapters.module_adapter import ModuleAdapter
from retrofit.adapters.registry import register_adapter
from retrofit.adapters.torch_module import check_inputs
from retrofit.policies.vae import VAEPolicy


class VAEAdapter(ModuleAdapter):
    """``PolicyAdapter`` over a ``VAEPolicy``."""

    module: VAEPolicy

    def log_prob(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """The ELBO surrogate of ``log π(act|obs)``; ``act`` may carry leading sample dims."""
        check_inputs(obs, act, self.observation_dim, self.action_dim)
        return self.module.elbo(obs, act)

    def log_prob_and_sample(
        self, obs: torch.Tensor, act: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(log π(act|obs), a_s, log π(a_s|obs))``; both actions scored in one batched pass."""
        check_inputs(obs, act, self.observation_dim, self.action_dim)
        with torch.no_grad():
            sampled = self.module.sample(obs)
        both = self.module.elbo(obs, torch.stack([act.expand_as(sampled), sampled]))
        return both[0], sampled, both[1]

    def sample(self, obs: torch.Tensor) -> torch.Tensor:
        """Detached BCQ samples ``dec(s, clip(z, ±0.5))``."""
        check_inputs(obs, None, self.observation_dim, self.action_dim)
        with torch.no_grad():
            return self.module.sample(obs)

    def check_observations(self, obs: torch.Tensor) -> None:
        """Refuse observations of the wrong width with a clear error."""
        check_inputs(obs, None, self.observation_dim, self.action_dim)


register_adapter("retrofit.policies.vae.VAEPolicy (BCQ-style VAE)",
                 lambda obj: isinstance(obj, VAEPolicy), VAEAdapter)
