"""Calibrate the offline estimate against rollouts (issue 24; docs/offline-estimate.md).

For one task: clone π_ref on the shipped dataset, fine-tune it with PREFINE while keeping a copy
of the policy every ``steps / checkpoints`` updates, estimate every kept policy offline
(``retrofit.estimate``, FQE with a bootstrap over the training data's episodes), roll each out in
the real environment (``retrofit.evaluate``) and write one ``calibration.csv`` row per policy.
Rows of other tasks already in the file are kept, so the tasks can run one process each. The
run's own ``safety_report.{json,md,png}`` goes to ``OUT/<Task>/``.

    OMP_NUM_THREADS=1 python scripts/offline_estimate_calibration.py BallRun
    OMP_NUM_THREADS=1 python scripts/offline_estimate_calibration.py BallRun --small --out /tmp/x
    python scripts/offline_estimate_calibration.py --summary docs/results/offline-estimate

``--small`` shrinks every size to check that the script works in about a minute; its numbers
mean nothing. ``--summary`` prints, per task, the Spearman rank correlation of estimated and
rolled-out cost, the mean absolute error and the interval's coverage.
"""

from __future__ import annotations

import argparse
import csv
import io
import subprocess
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

COLUMNS = (
    "task", "policy", "estimated_cost", "estimate_low", "estimate_high", "rollout_cost",
    "rollout_episodes", "estimated_reward", "rollout_reward", "action_shift", "cost_threshold",
    "seed", "selected", "commit", "family",
)
# Baseline policies added beside PREFINE's checkpoints (issue 24 asks for checkpoints "of
# PREFINE, PreSa and baselines"): name -> (registered method, config overrides). They spread the
# rolled-out costs (λ 0 stays unsafe on BallRun), so the rank correlation is not decided by
# near-ties among checkpoints of one run. They are estimated and rolled out like the checkpoints
# but are not candidates of the checkpoint selection.
BASELINES: dict[str, tuple[str, dict[str, Any]]] = {
    "sft-only": ("sft-only", {}),
    "dpo": ("dpo", {}),
    "prefine-paper": ("prefine", {"sft_weight": 1.0, "learning_rate": 3e-4}),
}
DEFAULT_OUT = Path("docs/results/offline-estimate")


@dataclass(frozen=True)
class Args:
    """Settings of one calibration run (one task, one seed)."""

    task: str = "BallRun"
    """DSRL task (short name or env id) with a dataset shipped in retrofit/data/default/."""
    cost_threshold: float | None = None
    """κ; None takes the task's middle DSRL threshold (20 for BulletGym tasks)."""
    seed: int = 0
    """Seeds π_ref, the split, PREFINE and FQE; rollouts use seeds 10 000 + i."""
    reference_steps: int = 20_000
    """BC steps of π_ref (retrofit.pretrain defaults otherwise)."""
    reference_policy: str = "clipped-gaussian"
    """π_ref's family, ``BCConfig.policy``: clipped-gaussian or tanh-gaussian (as ``retrofit
    compare --reference-policy``; docs/prefine.md)."""
    reference_std: float = 0.2
    """The clipped Gaussian's fixed spread (half-ranges; as ``retrofit compare
    --reference-std``). Until 2026-12-06 the script's default was the tanh-Gaussian; every
    recorded command names ``--reference-std 0.2``, so each reruns as it ran."""
    steps: int = 2_000
    """PREFINE updates."""
    checkpoints: int = 10
    """Policies kept along training (π_ref is added as one more)."""
    n_preferred: int = 100
    """Episodes of D_p (PREFINE §5.1)."""
    n_nonpreferred: int = 20
    """Episodes of D_np."""
    top_fraction: float = 0.5
    """D_p's pool: 0.5, the better half of SAFE, as in the committed rows (made before the
    library's default became 0, the N_p best SAFE episodes)."""
    episodes: int = 20
    """Rollout episodes per policy (OSRL evaluates 20 per checkpoint)."""
    n_envs: int = 4
    """Environments stepped in lockstep during rollouts."""
    n_bootstrap: int = 20
    """Bootstrap resamples of the training data's episodes."""
    n_iterations: int | None = None
    """FQE target updates (None: 2 H)."""
    steps_per_iteration: int = 25
    """Adam steps between target updates."""
    device: str = "auto"
    """Where PREFINE and FQE train."""
    baselines: str = ""
    """Comma-separated names of ``BASELINES`` to add (e.g. ``sft-only,dpo,prefine-paper``),
    each fine-tuned from the same π_ref on the same split for ``baseline_steps`` updates."""
    baseline_steps: int = 20_000
    """Updates of each baseline (SFT-only: a tenth, its budget in docs/protocol.md's rule 2)."""
    presa_steps: int = 0
    """PreSa (the library's defaults) from the same π_ref on segment feedback synthesised from
    D_p ∪ D_np, as ``retrofit compare`` trains it, for this many updates, keeping a copy every
    ``presa_steps / presa_checkpoints`` of them (family ``presa``); 0: no PreSa rows."""
    presa_checkpoints: int = 3
    """Copies of PreSa kept along its training."""
    out: Path = DEFAULT_OUT
    """Folder of calibration.csv; the run's safety report goes to OUT/<Task>/."""


def parse_args(argv: list[str] | None = None) -> tuple[Args, Path | None]:
    """``Args`` from the command line (every field as ``--name``), plus ``--summary FOLDER``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", nargs="?", default=Args.task)
    parser.add_argument("--summary", type=Path, default=None,
                        help="print the summary of FOLDER/calibration.csv and exit")
    parser.add_argument("--small", action="store_true",
                        help="tiny sizes, to check that the script works")
    for name, default in asdict(Args()).items():
        if name == "task":
            continue
        kind = {"out": Path, "device": str, "baselines": str, "reference_policy": str}.get(
            name, float if name in ("cost_threshold", "reference_std", "top_fraction") else int)
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=default)
    ns = vars(parser.parse_args(argv))
    summary, small = ns.pop("summary"), ns.pop("small")
    args = Args(**ns)
    if small:
        args = replace(args, reference_steps=300, steps=60, checkpoints=2, n_preferred=10,
                       n_nonpreferred=4, episodes=2, n_envs=1, n_bootstrap=3, n_iterations=10,
                       steps_per_iteration=5, baseline_steps=60)
    return args, summary


def main(argv: list[str] | None = None) -> None:
    """Run one task's calibration and merge its rows into OUT/calibration.csv, or summarise."""
    args, summary = parse_args(argv)
    if summary is not None:
        rows = read_rows(summary / "calibration.csv")
        print(summarise(rows))
        plot_calibration(rows, summary / "calibration.png")
        return
    rows = calibrate(args)
    path = args.out / "calibration.csv"
    kept = [r for r in read_rows(path) if r["task"] != rows[0]["task"]]
    write_rows(path, kept + rows)
    print(f"wrote {len(rows)} rows for {rows[0]['task']} to {path}")
    print(summarise(rows))


def calibrate(args: Args) -> list[dict[str, Any]]:
    """Train, keep checkpoints, estimate them offline, roll them out; one row per policy."""
    from retrofit import Retrofitter, TrajectoryDataset, evaluate
    from retrofit.adapters import wrap
    from retrofit.data.shipped import default_dataset_path
    from retrofit.estimate import FQEConfig, estimate_policies, select_checkpoint
    from retrofit.estimate.report import write_safety_report
    from retrofit.pretrain import BCConfig, pretrain_reference
    from retrofit.tasks import task_info

    info = task_info(args.task)
    cost_threshold = (args.cost_threshold if args.cost_threshold is not None
                      else info.cost_thresholds[1])
    data = TrajectoryDataset.from_hdf5(default_dataset_path(info.env_id))
    bc = (BCConfig(steps=args.reference_steps, policy="tanh-gaussian")
          if args.reference_policy == "tanh-gaussian" else
          BCConfig(steps=args.reference_steps, policy=args.reference_policy,
                   fixed_std=args.reference_std))
    reference = pretrain_reference(data, bc, device=args.device, seed=args.seed, progress=False)
    preferred, nonpreferred = data.split_preferences(
        cost_threshold, n_preferred=args.n_preferred, n_nonpreferred=args.n_nonpreferred,
        seed=args.seed, top_fraction=args.top_fraction)

    kept: dict[str, Any] = {"reference": wrap(reference).frozen_copy()}
    every = max(1, args.steps // args.checkpoints)

    def keep(step: int, trainer: Any) -> None:
        kept[f"step {step}"] = trainer.policy.frozen_copy()

    Retrofitter(reference, device=args.device, seed=args.seed, progress=False).fit(
        preferred, nonpreferred, steps=args.steps, callback=keep, callback_every=every)
    candidates = len(kept)  # π_ref and PREFINE's checkpoints: what the selection chooses among
    for name in [n for n in args.baselines.split(",") if n]:
        if name not in BASELINES:
            raise SystemExit(f"--baselines: unknown {name!r}; known: {', '.join(BASELINES)}")
        method, overrides = BASELINES[name]
        steps = args.baseline_steps // 10 if method == "sft-only" else args.baseline_steps
        fitter = Retrofitter(reference, method, device=args.device, seed=args.seed,
                             progress=False, **overrides)
        fitter.fit(preferred, nonpreferred, steps=steps)
        kept[f"{name} {steps}"] = fitter.policy_.frozen_copy()

    presa_first = len(kept)
    if args.presa_steps:
        from retrofit.compare.cell_data import CellData, cell_data

        feedback = cell_data("presa", CellData(data, preferred, nonpreferred, cost_threshold,
                                               args.seed))

        def keep_presa(step: int, trainer: Any) -> None:
            kept[f"presa step {step}"] = trainer.policy.frozen_copy()

        Retrofitter(reference, "presa", device=args.device, seed=args.seed, progress=False,
                    pretrain_steps=0).fit(
            *feedback, steps=args.presa_steps, callback=keep_presa,
            callback_every=max(1, args.presa_steps // args.presa_checkpoints))
    config = FQEConfig(n_bootstrap=args.n_bootstrap, n_iterations=args.n_iterations,
                       steps_per_iteration=args.steps_per_iteration, seed=args.seed)
    estimates = estimate_policies(kept, data, config, device=args.device)
    selection = select_checkpoint(estimates[:candidates], cost_threshold)
    write_safety_report(args.out / info.env_id, estimates[:candidates], selection, cost_threshold,
                        {"task": info.env_id, "config": config.to_dict(), "args": _jsonable(args)})

    commit = _commit()
    rows = []
    for i, (name, policy) in enumerate(kept.items()):
        result = evaluate(policy, info.env_id, cost_threshold, episodes=args.episodes, seed=10_000,
                          n_envs=args.n_envs)
        e = estimates[i]
        rows.append({
            "task": info.env_id, "policy": name, "estimated_cost": e.cost.estimate,
            "estimate_low": e.cost.low, "estimate_high": e.cost.high,
            "rollout_cost": result.cost, "rollout_episodes": args.episodes,
            "estimated_reward": e.reward.estimate, "rollout_reward": result.reward,
            "action_shift": e.action_shift, "cost_threshold": cost_threshold, "seed": args.seed,
            "selected": i == selection.index, "commit": commit,
            "family": ("reference" if i == 0 else "checkpoint" if i < candidates
                       else "baseline" if i < presa_first else "presa"),
        })
        print(f"{name}: estimated cost {e.cost.estimate:.2f} [{e.cost.low:.2f}, "
              f"{e.cost.high:.2f}], rolled out {result.cost:.2f}", flush=True)
    return rows


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN when a side is constant."""
    rx, ry = _ranks(np.asarray(x, float)), _ranks(np.asarray(y, float))
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def summarise(rows: list[dict[str, Any]]) -> str:
    """Per task: policies, Spearman ρ, mean |error|, coverage; and selected vs last checkpoint."""
    lines = ["task | policies | spearman | mean abs error | coverage | selected: rollout cost "
             "/ reward | last: rollout cost / reward"]
    for task in sorted({r["task"] for r in rows}):
        sub = [r for r in rows if r["task"] == task]
        est = np.array([float(r["estimated_cost"]) for r in sub])
        low = np.array([float(r["estimate_low"]) for r in sub])
        high = np.array([float(r["estimate_high"]) for r in sub])
        roll = np.array([float(r["rollout_cost"]) for r in sub])
        chosen = next((r for r in sub if str(r["selected"]) == "True"), None)
        # the last of the selection's candidates (π_ref and PREFINE's checkpoints; rows from
        # before the family column are all candidates)
        last = [r for r in sub if r.get("family") in (None, "", "reference", "checkpoint")][-1]
        lines.append(
            f"{task} | {len(sub)} | {spearman(est, roll):.2f} | "
            f"{np.abs(est - roll).mean():.2f} | {((low <= roll) & (roll <= high)).mean():.2f} | "
            + (f"{float(chosen['rollout_cost']):.2f} / {float(chosen['rollout_reward']):.1f} | "
               if chosen is not None else "none estimated within κ | ") +
            f"{float(last['rollout_cost']):.2f} / {float(last['rollout_reward']):.1f}"
        )
    return "\n".join(lines)


def plot_calibration(rows: list[dict[str, Any]], path: Path) -> None:
    """Estimated (with its interval) against rolled-out episode cost, one panel per task, the
    diagonal and κ marked; written atomically to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from retrofit.plotting import save_png_atomic

    tasks = sorted({r["task"] for r in rows})
    if not tasks:
        return
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        sub = [r for r in rows if r["task"] == task]
        roll = np.array([float(r["rollout_cost"]) for r in sub])
        est = np.array([float(r["estimated_cost"]) for r in sub])
        low = np.array([float(r["estimate_low"]) for r in sub])
        high = np.array([float(r["estimate_high"]) for r in sub])
        # the point estimate (all of the data) can fall outside its bootstrap interval: draw both
        ax.vlines(roll, low, high, color="tab:blue", alpha=0.6, label="bootstrap interval")
        base = np.array([r.get("family") == "baseline" for r in sub])
        ax.scatter(roll[~base], est[~base], color="tab:blue", zorder=3,
                   label="estimate: π_ref, PREFINE checkpoints")
        if base.any():
            ax.scatter(roll[base], est[base], color="tab:orange", marker="s", zorder=3,
                       label="estimate: baselines")
        top = float(max(roll.max(), high.max())) * 1.05 + 1e-9
        ax.plot([0, top], [0, top], color="grey", linewidth=1)
        cost_threshold = float(sub[0]["cost_threshold"])
        ax.axhline(cost_threshold, color="red", linestyle="--", linewidth=1,
                   label=f"κ = {cost_threshold:g}")
        ax.axvline(cost_threshold, color="red", linestyle="--", linewidth=1)
        ax.set_title(task)
        ax.set_xlabel("rolled-out episode cost")
    axes[0][0].set_ylabel("offline estimate (interval)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    save_png_atomic(fig, path, dpi=110)
    plt.close(fig)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of ``path`` (none when it does not exist)."""
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` with ``COLUMNS`` to ``path`` atomically."""
    from retrofit.atomic import atomic_write_text

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x), dtype=float)
    for value in np.unique(x):
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _jsonable(args: Args) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(args).items()}


if __name__ == "__main__":
    sys.exit(main())
