"""PPL: Bradley–Terry preference learning on trajectory segments (PREFINE's baseline [4]).

What we implement (PREFINE §5.1 describes PPL only as "direct preference learning without SFT
anchoring initialised by the reference policy"; the rest is our documented choice, following CPL,
Hejna et al. 2024, whose implicit reward is the policy's own log-likelihood):

- a segment σ = (s_t, a_t)_{t<K} is scored by ``ψ(σ) = α Σ_t log π_θ(a_t|s_t)``; with
  ``reference_ratio=True`` the score is ``α Σ_t [log π_θ(a_t|s_t) - log π_ref(a_t|s_t)]`` (CPL-KL);
- every pair is (segment of a preferred trajectory) ≻ (segment of a non-preferred trajectory);
- ``L = -mean logσ(ψ(σ⁺) - ψ(σ⁻))`` (Bradley–Terry, 1952): no SFT term, no policy-sampled
  counterfactual actions (the two things PREFINE adds), and only dataset actions are scored.
"""

from __future__ import annotations

import torch


def segment_scores(log_ratios: torch.Tensor, alpha: float) -> torch.Tensor:
    """``ψ = α Σ_t x_t`` over the last dim of ``log_ratios`` ``(n_segments, K)``."""
    return alpha * log_ratios.sum(-1)
