"""PreSa on BallRun: synthetic feedback → π_ref by BC on all segments → PreSa → evaluate both.

    .venv/bin/python examples/presa_ballrun.py                       # shipped BallRun data
    .venv/bin/python examples/presa_ballrun.py --dataset FILE --steps 100000 --pretrain-steps 30000

The defaults are a reduced budget that finishes in minutes on a laptop CPU; the paper's (Table 4,
BulletGym) are 30k pretraining and 100k PreSa steps. Writes the feedback file, both policies and
PreSa's per-step metrics under ``--out``. Other tasks: ``examples/presa_ballcircle.py``,
``examples/presa_halfcheetah_velocity.py`` or ``--task`` with a DSRL-format file of that task.

``--reference high-reward`` replaces the paper's π_ref (BC on all segments) by the demo's (BC on the
top 30 % episodes by reward, 20k steps): a user's own high-reward policy, the retrofit use case.
On BallCircle the segment reference stands still (segments under-weight episode starts, see
``docs/presa.md``) and PreSa can only keep that; from the high-reward one it keeps the reward.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from retrofit import Retrofitter, TrajectoryDataset, evaluate, feedback
from retrofit.methods.presa import presa_reference
from retrofit.policies.io import save_policy
from retrofit.pretrain import BCConfig, pretrain_reference
from retrofit.tasks import task_info


@dataclass
class Args:
    """Command-line arguments."""

    task: str = "OfflineBallRun-v0"
    """DSRL env id or short name of the dataset's task."""
    dataset: str | None = None
    """DSRL-format HDF5 file; default: the one retrofit ships for the task (BallRun, BallCircle)."""
    cost_threshold: float | None = None
    """κ; default: the middle of the task's DSRL set (BulletGym 20, SafetyGym 40)."""
    n_pairs: int = 10_000
    """Segment pairs of synthetic feedback (paper: 10,000)."""
    segment_length: int = 64
    """Steps per segment (paper: 32 / 64 / 128)."""
    reference: str = "segments"
    """π_ref: "segments" (paper: BC on all segments) or "high-reward" (BC on top-30 % episodes)."""
    pretrain_steps: int = 3_000
    """BC steps of π_ref on all segments (paper: 30k BulletGym / 60k SafetyGym)."""
    steps: int = 3_000
    """PreSa steps (paper: 100k BulletGym / 200k SafetyGym)."""
    method: str = "presa"
    """Any PreSa-family method name (presa, bc-safe-seg, binary-alignment, ...)."""
    episodes: int = 20
    """Evaluation episodes per policy."""
    seed: int = 0
    """One seed for the feedback, π_ref, training and evaluation."""
    threads: int = 1
    """torch CPU threads."""
    out: str = "runs/presa_example"
    """Output folder."""


def parse_args(defaults: Args | None = None) -> Args:
    """Read ``Args`` from the command line (``defaults`` lets other examples reuse this)."""
    defaults = defaults or Args()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, value in asdict(defaults).items():
        flag = "--" + name.replace("_", "-")
        kind = float if name == "cost_threshold" else type(value) if value is not None else str
        parser.add_argument(flag, type=kind, default=value)
    return Args(**vars(parser.parse_args()))


def main(args: Args) -> dict:
    """Run the pipeline; print and return the before/after scores."""
    # ---- seeding and threads: one marked block (every call below takes ``args.seed``)
    torch.set_num_threads(args.threads)
    if args.reference not in ("segments", "high-reward"):  # before any data is read or written
        raise SystemExit(f"--reference {args.reference!r}: use 'segments' or 'high-reward'.")

    info = task_info(args.task)
    kappa = args.cost_threshold
    if kappa is None:
        kappa = info.cost_thresholds[len(info.cost_thresholds) // 2]
    if args.dataset is None:
        from retrofit.data.shipped import default_dataset_path

        args.dataset = str(default_dataset_path(info.env_id))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    data = TrajectoryDataset.from_hdf5(args.dataset, task=info.env_id)
    fb = feedback.synthesize(data, n_pairs=args.n_pairs, segment_length=args.segment_length,
                             cost_threshold=kappa, seed=args.seed)
    feedback.save(fb, out / "feedback.h5", embed_dataset=False, dataset_path=args.dataset)
    print(fb, fb.summary())

    if args.reference == "segments":
        reference = presa_reference(fb, steps=args.pretrain_steps, seed=args.seed)
    else:
        reference = pretrain_reference(data, BCConfig(), seed=args.seed)
    retrofitter = Retrofitter(reference, args.method, seed=args.seed, log_dir=out / args.method)
    policy = retrofitter.fit(fb, steps=args.steps)
    save_policy(reference, out / "reference.pt")
    save_policy(policy, out / f"{args.method}.pt")

    report = {"task": info.env_id, "cost_threshold": kappa, "method": args.method}
    for name, pol in (("reference", reference), (args.method, policy)):
        result = evaluate(pol, info.env_id, kappa, episodes=args.episodes, seed=args.seed)
        print(f"{name}: {result}")
        report[name] = {"normalized_reward": result.normalized_reward,
                        "normalized_cost": result.normalized_cost}
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main(parse_args())
