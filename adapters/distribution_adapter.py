"""The part of an adapter that only needs "one forward pass gives parameters".

SB3, d3rlpy and plain torch-module adapters all work the same way: one forward pass over the
observations returns the policy's parameters (a distribution, or ``μ(s)`` for a deterministic
actor), and from those parameters the adapter scores actions, draws actions and reads the
deterministic action. Subclasses say how (``_params``, ``_score``, ``_draw``, ``_mean``); the
contract's ``log_prob``, ``log_prob_and_sample``, ``sample`` and ``mean_action`` are written
once here, so each of them is one forward pass in every adapter.
"""

from __future__ import annotations

from typing import Any

import torch


class DistributionAdapter:
    """Mixin: the forward-pass-sharing half of ``PolicyAdapter`` over ``_params`` and friends."""

    kind: str  # "squashed", "gaussian" or "deterministic": the family of the wrapped policy

    @property
    def squashed(self) -> bool:
        """True when ``log π`` is a tanh-squashed density (unbounded at the action bounds)."""
        return self.kind == "squashed"

    def _params(self, obs: torch.Tensor, act: torch.Tensor | None) -> Any:
        """One forward pass (after input checks): the policy's parameters for ``obs``."""
        raise NotImplementedError

    def _score(self, params: Any, act: torch.Tensor) -> torch.Tensor:
        """``log π(act)`` from ``_params``; ``act`` may carry leading sample dims."""
        raise NotImplementedError

    def _draw(self, params: Any) -> torch.Tensor:
        """Detached env actions drawn from ``_params``."""
        raise NotImplementedError

    def _mean(self, params: Any) -> torch.Tensor:
        """The deterministic env action from ``_params``, before any clipping."""
        raise NotImplementedError

    def log_prob(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Differentiable ``log π(act|obs)`` of env-unit actions for raw observations."""
        return self._score(self._params(obs, act), act)

    def log_prob_and_sample(
        self, obs: torch.Tensor, act: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One forward: ``(log π(act|obs), a_s, log π(a_s|obs))`` with ``a_s ~ π`` detached."""
        params = self._params(obs, act)
        sampled = self._draw(params)
        return self._score(params, act), sampled, self._score(params, sampled)

    def sample(self, obs: torch.Tensor) -> torch.Tensor:
        """Detached env actions drawn from the policy."""
        with torch.no_grad():
            return self._draw(self._params(obs, None))

    def mean_action(self, obs: torch.Tensor) -> torch.Tensor:
        """Differentiable deterministic action ``μ(s)`` in env units, before any clipping."""
        return self._mean(self._params(obs, None))
