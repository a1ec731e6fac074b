"""Where PREFINE's preferred-side DPO term (Eq. 7) moves a fixed-spread Gaussian policy.

On D_p, PREFINE compares the dataset action a⁺ with a sample a⁻ of the policy itself
(``retrofit.losses.prefine``). For a Gaussian policy of fixed spread σ (the default clipped
Gaussian, σ 0.2 half-ranges; bounds aside) the margin is, per action dimension,

    Δ = [log πθ(a⁺) − log π_ref(a⁺)] − [log πθ(a⁻) − log π_ref(a⁻)],

and its expectation over a⁻ ~ πθ is E[Δ] = (μθ − μ_ref)(a⁺ − μθ) / σ²: zero both at π_ref's mean
and at the dataset action, so this term cannot pull the policy *beyond* cloning a⁺ — at best it
clones it, shrunk towards π_ref. This script finds where the term leaves the mean, alone (λ 0)
and with the SFT term (λ 0.3), by Adam on the library's own ``prefine_loss`` with fresh policy
samples each step (as the trainer draws them), one state, one dimension, the non-preferred side
switched off. It prints the settled mean as a share of the way from μ_ref to a⁺, and the DPO
term's value there (log 2 = 0.693 is "no preference").

    .venv/bin/python benchmarks/prefine_preferred_term.py [--json]
"""

from __future__ import annotations

import argparse
import json
import math

import torch

from retrofit.losses.prefine import PairLogProbs, prefine_loss


def gaussian_log_prob(action: torch.Tensor, mean: torch.Tensor, std: float) -> torch.Tensor:
    """log N(action; mean, std²) of one action dimension."""
    return -0.5 * ((action - mean) / std) ** 2 - math.log(std * math.sqrt(2 * math.pi))


def settle(distance: float, std: float, beta: float, sft_weight: float, start: float,
           steps: int, samples: int, seed: int) -> dict[str, float]:
    """Run Adam on the preferred side of ``prefine_loss`` from mean ``start`` with π_ref's mean
    at 0 and a⁺ at ``distance``; return the settled mean and the term's value there."""
    torch.manual_seed(seed)
    mean = torch.tensor(float(start), requires_grad=True)
    reference_mean = torch.tensor(0.0)
    optimizer = torch.optim.Adam([mean], lr=1e-3)
    chosen = torch.full((samples,), float(distance))
    off = torch.zeros(samples)  # the non-preferred side: constant, no gradient
    tail = []
    for step in range(steps):
        rejected = mean.detach() + std * torch.randn(samples)  # a⁻ ~ πθ, not differentiated
        preferred = PairLogProbs(
            gaussian_log_prob(chosen, mean, std), gaussian_log_prob(rejected, mean, std),
            gaussian_log_prob(chosen, reference_mean, std),
            gaussian_log_prob(rejected, reference_mean, std))
        loss, metrics = prefine_loss(preferred, PairLogProbs(off, off, off, off), beta,
                                     sft_weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step >= steps - steps // 5:
            tail.append((mean.item(), metrics["loss/dpo_preferred"].item()))
    settled = sum(m for m, _ in tail) / len(tail)
    return {"distance": distance, "sft_weight": sft_weight, "start": start,
            "settled_mean": settled, "share_of_the_way": settled / distance,
            "dpo_preferred": sum(v for _, v in tail) / len(tail)}


def main() -> None:
    """Print (or ``--json``) the settled means for a few distances, λ 0 and 0.3."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--std", type=float, default=0.2)
    parser.add_argument("--beta", type=float, default=0.2)
    parser.add_argument("--steps", type=int, default=6_000)
    parser.add_argument("--samples", type=int, default=4_096)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [settle(distance, args.std, args.beta, sft_weight, start, args.steps, args.samples,
                   seed=0)
            for distance in (0.1, 0.25, 0.5, 1.0)
            for sft_weight in (0.0, 0.3)
            for start in (0.0, distance)]
    if args.json:
        print(json.dumps({"std": args.std, "beta": args.beta, "rows": rows}, indent=2))
        return
    print(f"σ {args.std}, β {args.beta}; π_ref's mean 0, a⁺ at the distance (half-ranges)")
    print("distance  λ    start  settled mean  share of the way  DPO term (log 2 = 0.693)")
    for r in rows:
        print(f"{r['distance']:<9g} {r['sft_weight']:<4g} {r['start']:<6g} "
              f"{r['settled_mean']:<13.3f} {r['share_of_the_way']:<17.2f} "
              f"{r['dpo_preferred']:.3f}")


if __name__ == "__main__":
    main()
