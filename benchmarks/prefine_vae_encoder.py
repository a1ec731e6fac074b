"""Where PREFINE's non-preferred push lands in a VAE policy: the encoder or the decoder.

A BCQ-style VAE policy (``retrofit.policies.vae``) has no tractable likelihood; PREFINE scores
it with the ELBO surrogate ``−(‖a − dec(s, z)‖² + β_KL · KL(q(z|s, a) ‖ N(0, I)))``, z ~ q.
The policy *acts* with the decoder alone (``dec(s, 0)``), but the surrogate of a non-preferred
action can be driven down by the encoder alone: a large ``q(z|s, a⁻)`` spread (log σ is clamped
at 15, BCQ's bound) makes the KL term, and so −ELBO, as large as it likes without moving the
decoder. This script fine-tunes one VAE π_ref with the library's PREFINE and splits the change
of ``log π(a⁻|s)`` on D_np (and of ``log π(a⁺|s)`` on D_p) into its KL part and its
reconstruction part, and reports how far the acting action ``dec(s, 0)`` moved from a⁻.

    .venv/bin/python benchmarks/prefine_vae_encoder.py REFERENCE.pt --task BallRun [--json]

``REFERENCE.pt``: a VAE π_ref saved by ``retrofit.policies.io.save_policy`` (e.g. the comparison
harness's ``reference/seed0.pt`` made with ``CompareConfig(reference_policy="vae")``).
"""

from __future__ import annotations

import argparse
import json

import torch


@torch.no_grad()
def elbo_parts(policy, obs: torch.Tensor, act: torch.Tensor, samples: int = 16) -> dict:
    """β_KL · KL, the reconstruction error (z ~ q, averaged over ``samples`` draws), and
    ‖dec(s, 0) − a‖², each a mean over the pairs (``VAEPolicy.elbo_terms``)."""
    draws = [policy.elbo_terms(obs, act) for _ in range(samples)]
    recon = torch.stack([r for r, _ in draws]).mean(0)
    kl = draws[0][1]  # the KL is closed-form: the same for every draw
    acting = (policy.deterministic_action(obs) - act).pow(2).sum(-1)
    return {"kl": float(policy.kl_weight * kl.mean()), "recon": float(recon.mean()),
            "acting_sq_distance": float(acting.mean()),
            "log_std_max": float(policy.encode(obs, act)[1].max())}


def main(argv: list[str] | None = None) -> int:
    """Fine-tune, then print the ELBO's parts before and after on D_p and D_np."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reference", help="a saved VAE π_ref (.pt)")
    parser.add_argument("--task", default="BallRun")
    parser.add_argument("--cost-threshold", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=3_000)
    parser.add_argument("--sft-weight", type=float, default=0.3)
    parser.add_argument("--learning-rate", type=float, default=3e-5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from retrofit import Retrofitter
    from retrofit.data.dataset import TrajectoryDataset
    from retrofit.policies.io import load_policy
    from retrofit.policies.vae import VAEPolicy
    from retrofit.suite.runner import find_data, settings_for

    torch.set_num_threads(1)
    settings = settings_for(args.task)
    source = find_data(settings)
    if source is None:
        raise SystemExit(f"no data for {args.task}")
    data = TrajectoryDataset.from_hdf5(str(source.path), task=settings.task)
    reference = load_policy(args.reference, device="cpu")
    if not isinstance(reference, VAEPolicy):
        raise SystemExit(f"{args.reference} holds a {type(reference).__name__}, not a VAE policy")
    preferred, nonpreferred = data.split_preferences(
        args.cost_threshold, n_preferred=settings.n_preferred,
        n_nonpreferred=settings.n_nonpreferred, seed=args.seed)
    tuned = Retrofitter(reference, "prefine", sft_weight=args.sft_weight,
                        learning_rate=args.learning_rate, device="cpu", seed=args.seed,
                        progress=False).fit(preferred, nonpreferred, steps=args.steps)
    rows = []
    for side, part in (("preferred", preferred), ("nonpreferred", nonpreferred)):
        obs = torch.as_tensor(part.observations, dtype=torch.float32)
        act = torch.as_tensor(part.actions, dtype=torch.float32)
        before, after = elbo_parts(reference, obs, act), elbo_parts(tuned, obs, act)
        rows.append({"side": side, "pairs": len(obs),
                     **{f"{k}_ref": v for k, v in before.items()},
                     **{f"{k}_tuned": v for k, v in after.items()}})
    if args.json:
        for row in rows:
            print(json.dumps({"task": args.task, "steps": args.steps, **row}))
        return 0
    print(f"{args.task} κ={args.cost_threshold:g} seed {args.seed}: PREFINE λ {args.sft_weight}, "
          f"lr {args.learning_rate}, {args.steps} steps, one thread")
    print(f"{'side':>13} {'β_KL·KL ref→tuned':>26} {'recon ref→tuned':>20} "
          f"{'‖dec(s,0)−a‖² ref→tuned':>26} {'max log σ':>10}")
    for r in rows:
        print(f"{r['side']:>13} {r['kl_ref']:>12.3g} → {r['kl_tuned']:<11.3g} "
              f"{r['recon_ref']:>8.3f} → {r['recon_tuned']:<8.3f} "
              f"{r['acting_sq_distance_ref']:>11.3f} → {r['acting_sq_distance_tuned']:<11.3f} "
              f"{r['log_std_max_tuned']:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
