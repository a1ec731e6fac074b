"""PreSa on BallRun: synthetic feedback → π_ref by BC on all segments → PreSa → evaluate both.

    .venv/bin/python examples/presa_ballrun.py                       # shipped BallRun data
    .venv/bin/python examples/presa_ballrun.py --dataset FILE --steps 100000 --pretrain-steps 30000
    .venv/bin/python examples/presa_ballrun.py --small  # 46 s at OMP_NUM_THREADS=1

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

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from _cli import ExampleArgs, parse

from retrofit import Retrofitter, TrajectoryDataset, evaluate, feedback
from retrofit.device import set_threads
from retrofit.methods.presa import presa_reference
from retrofit.policies.io import save_policy
from retrofit.pretrain import BCConfig, pretrain_reference
from retrofit.tasks import task_info


@dataclass
class Args(ExampleArgs):
    """Settings of the example (each is also a command-line flag)."""

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
    pretrain_steps: int | None = None
    """BC steps of π_ref; default: 3,000 for "segments" (paper: 30k BulletGym / 60k SafetyGym),
    20,000 for "high-reward" (BCConfig's)."""
    steps: int = 3_000
    """PreSa steps (paper: 100k BulletGym / 200k SafetyGym)."""
    method: str = "presa"
    """Any PreSa-family method name (presa, bc-safe-seg, binary-alignment, ...)."""
    episodes: int = 20
    """Evaluation episodes per policy."""
    seed: int = 0
    """One seed for the feedback, π_ref, training and evaluation."""
    out: str = "runs/presa_example"
    """Output folder (a second run replaces what the first wrote there)."""


SMALL = {"n_pairs": 1_000, "pretrain_steps": 500, "steps": 500, "episodes": 5}
"""``--small``: 1,000 feedback pairs, 500 BC and 500 PreSa steps, 5 evaluation episodes."""


def parse_args(defaults: Args | None = None, small: dict | None = None,
               description: str | None = None, args: Sequence[str] | None = None) -> Args:
    """Read ``Args`` from the command line; the other PreSa examples reuse this with their own
    ``defaults``, ``small`` preset (default ``SMALL``) and ``description`` (their docstring)."""
    return parse(defaults or Args(), SMALL if small is None else small,
                 description=description or __doc__, args=args)


def main(args: Args) -> dict:
    """Run the pipeline; print and return the before/after scores."""
    # ---- seeding and threads: one marked block (every call below takes ``args.seed``)
    set_threads(args.threads)
    if args.reference not in ("segments", "high-reward"):  # before any data is read or written
        raise SystemExit(f"--reference {args.reference!r}: use 'segments' or 'high-reward'.")

    info = task_info(args.task)
    cost_threshold = args.cost_threshold
    if cost_threshold is None:
        cost_threshold = info.cost_thresholds[len(info.cost_thresholds) // 2]
    out = Path(args.out)
    if args.dataset is None:
        args.dataset = str(shipped_dataset(info.env_id))
    out.mkdir(parents=True, exist_ok=True)

    data = TrajectoryDataset.from_hdf5(args.dataset, task=info.env_id)
    fb = feedback.synthesize(data, n_pairs=args.n_pairs, segment_length=args.segment_length,
                             cost_threshold=cost_threshold, seed=args.seed)
    feedback.save(fb, out / "feedback.h5", embed_dataset=False, dataset_path=args.dataset)
    print(fb, fb.summary())

    if args.reference == "segments":
        bc_steps = 3_000 if args.pretrain_steps is None else args.pretrain_steps
        reference = presa_reference(fb, steps=bc_steps, seed=args.seed)
    else:
        bc = BCConfig() if args.pretrain_steps is None else BCConfig(steps=args.pretrain_steps)
        reference = pretrain_reference(data, bc, seed=args.seed)
    retrofitter = Retrofitter(reference, args.method, seed=args.seed, log_dir=out / args.method,
                              overwrite=True)
    policy = retrofitter.fit(fb, steps=args.steps)
    save_policy(reference, out / "reference.pt")
    save_policy(policy, out / f"{args.method}.pt")

    report = {"task": info.env_id, "cost_threshold": cost_threshold, "method": args.method}
    for name, pol in (("reference", reference), (args.method, policy)):
        result = evaluate(pol, info.env_id, cost_threshold, episodes=args.episodes, seed=args.seed)
        print(f"{name}: {result}")
        report[name] = {"normalized_reward": result.normalized_reward,
                        "normalized_cost": result.normalized_cost}
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report


def shipped_dataset(env_id: str) -> Path:
    """The dataset retrofit ships for the task, or a stop that says which data the example needs
    (before anything is written)."""
    from retrofit.data.shipped import SHIPPED_DATASETS, default_dataset_path

    if env_id not in SHIPPED_DATASETS:
        raise SystemExit(
            f"No dataset of {env_id} ships with retrofit, and the examples download nothing: "
            f"pass --dataset FILE, a DSRL-format file of the task (`retrofit collect {env_id} "
            "--out runs/datasets` makes one in the real environment; DSRL's own file of it also "
            f"works). Shipped tasks: {', '.join(SHIPPED_DATASETS)}.")
    return default_dataset_path(env_id)


if __name__ == "__main__":
    main(parse_args())
