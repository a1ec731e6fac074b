"""PREFINE update throughput at the paper's setting, and its fraction of the matmul roofline.

Setting (PREFINE A.4): 256 preferred + 256 non-preferred states per step, [256, 256] MLP
tanh-Gaussian policy, Adam. The roofline is this machine's measured dense float32 matmul rate
(``torch.mm`` on 2048² matrices, same thread count); the update's useful work is counted as the
MLP matmul FLOPs: trainable forward + backward (3× forward) plus, with ``--no-precompute``, the
reference's forward, over both halves of the batch.

    python benchmarks/prefine_step.py            # a table
    python benchmarks/prefine_step.py --json     # one JSON line
    python benchmarks/prefine_step.py --policy clipped-gaussian   # the clipped-Gaussian likelihood
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time

import numpy as np
import torch

from retrofit.device import get_device, synchronize
from retrofit.methods.prefine import PrefineConfig, PrefineTrainer
from retrofit.policies.clipped_gaussian import ClippedGaussianPolicy
from retrofit.policies.gaussian import TanhGaussianPolicy


class _Arrays:
    def __init__(self, rng: np.random.Generator, n: int, observation_dim: int,
                 action_dim: int) -> None:
        self.observations = rng.standard_normal((n, observation_dim)).astype(np.float32)
        self.actions = rng.uniform(-0.99, 0.99, (n, action_dim)).astype(np.float32)
        self.episode_starts = np.arange(0, n + 1, 100)


def mlp_forward_flops(observation_dim: int, action_dim: int, hidden: tuple[int, ...]) -> int:
    """Multiply-add FLOPs (2 per MAC) of one sample through trunk and both heads."""
    dims = [observation_dim, *hidden]
    macs = (sum(a * b for a, b in zip(dims[:-1], dims[1:], strict=True))
            + 2 * hidden[-1] * action_dim)
    return 2 * macs


def matmul_peak_flops(device: torch.device, n: int = 2048, repeats: int = 10) -> float:
    """Measured float32 ``torch.mm`` FLOP/s on ``device``."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    torch.mm(a, b)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    synchronize(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def git_commit() -> str:
    """Short commit hash of the working tree, or 'unknown'."""
    try:
        cmd = ["git", "rev-parse", "--short", "HEAD"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def profile_steps(trainer: PrefineTrainer, data_p: _Arrays, data_n: _Arrays,
                  steps: int) -> dict[str, float]:
    """Milliseconds per update by kind of operator (self CPU time), and the rest (Python,
    dispatch and everything the profiler does not attribute to an operator)."""
    from torch.profiler import ProfilerActivity, profile

    kinds = {"matmul": ("aten::addmm", "aten::mm", "aten::bmm"),
             "optimizer": ("aten::_fused_adam_",)}
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        trainer.fit(data_p, data_n, steps=steps, progress=False)
    wall = time.perf_counter() - start
    totals = dict.fromkeys([*kinds, "other_ops"], 0.0)
    for event in prof.key_averages():
        kind = next((k for k, names in kinds.items() if event.key in names), "other_ops")
        totals[kind] += event.self_cpu_time_total / 1e3  # µs -> ms
    out = {f"{k}_ms_per_update": round(v / steps, 3) for k, v in totals.items()}
    out["wall_ms_per_update"] = round(wall * 1e3 / steps, 3)
    out["unattributed_ms_per_update"] = round(
        out["wall_ms_per_update"] - sum(totals.values()) / steps, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--observation-dim", type=int, default=17, help="HalfCheetah: 17")
    parser.add_argument("--action-dim", type=int, default=6, help="HalfCheetah: 6")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--no-precompute", action="store_true",
                        help="run the reference's forward pass every step (the old path)")
    parser.add_argument("--policy", choices=("tanh-gaussian", "clipped-gaussian"),
                        default="tanh-gaussian", help="the reference's class (its likelihood)")
    parser.add_argument("--fixed-std", type=float, default=None,
                        help="clipped-gaussian only: a fixed spread (the demo's 0.2)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the trainable policy's forward (inductor)")
    parser.add_argument("--profile", type=int, default=0, metavar="STEPS",
                        help="after timing, profile STEPS updates and add where the time goes")
    args = parser.parse_args()

    device = get_device(args.device)
    hidden = (256, 256)
    rng = np.random.default_rng(0)
    cls = ClippedGaussianPolicy if args.policy == "clipped-gaussian" else TanhGaussianPolicy
    extra = {"fixed_std": args.fixed_std} if args.policy == "clipped-gaussian" else {}
    policy = cls(args.observation_dim, args.action_dim, -np.ones(args.action_dim),
                 np.ones(args.action_dim), hidden, **extra)
    from retrofit.adapters import wrap

    trainer = PrefineTrainer(wrap(policy), PrefineConfig(
        beta=0.2, sft_weight=1.0, batch_size=args.batch_size,
        precompute_reference=not args.no_precompute),
                             device=device)
    if args.compile:
        trainer.policy.module = torch.compile(trainer.policy.module)
    data_p = _Arrays(rng, 20_000, args.observation_dim, args.action_dim)
    data_n = _Arrays(rng, 4_000, args.observation_dim, args.action_dim)
    trainer.fit(data_p, data_n, steps=args.warmup, progress=False)
    trainer.train_wall_clock_s = 0.0
    trainer.fit(data_p, data_n, steps=args.steps, progress=False)
    updates_per_s = args.steps / trainer.train_wall_clock_s

    per_sample = mlp_forward_flops(args.observation_dim, args.action_dim, hidden)
    # trainable forward + backward (3x forward), plus the reference's forward unless its
    # per-state parameters were precomputed (then the step does no reference forward)
    forwards = 3 if not args.no_precompute else 4
    flops_per_update = forwards * per_sample * 2 * args.batch_size
    peak = matmul_peak_flops(device)
    result = {
        "updates_per_s": round(updates_per_s, 1),
        "policy": args.policy if args.fixed_std is None else f"{args.policy} σ={args.fixed_std}",
        "batch_size": args.batch_size,
        "precompute_reference": not args.no_precompute,
        "hidden_sizes": list(hidden),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "roofline_fraction": round(flops_per_update * updates_per_s / peak, 4),
        "achieved_gflops": round(flops_per_update * updates_per_s / 1e9, 2),
        "matmul_peak_gflops": round(peak / 1e9, 2),
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "commit": git_commit(),
    }
    if args.profile:
        result["profile"] = profile_steps(trainer, data_p, data_n, args.profile)
    if args.json:
        print(json.dumps(result))
    else:
        width = max(len(k) for k in result)
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
