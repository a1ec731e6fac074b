"""PreSa comparison table: all eight feedback methods on one task and threshold, several seeds.

Writes (atomically, after every run, so a stopped run keeps what it finished):
- ``<out>/presa_<task>_<κ>.csv``: ``method, task, cost_threshold, seed, normalized_reward,
  normalized_cost`` (the machine-readable comparison, one row per method × seed);
- ``<out>/presa_<task>_<κ>_details.csv``: the same rows with raw return/cost, steps and seconds;
- ``<out>/presa_<task>_<κ>.md``: mean ± std over seeds per method, the settings, git commit and
  hardware;
- with ``--checkpoint-every N``, ``<out>/presa_<task>_<κ>_curve.csv``: a learning curve, one row
  per (method, seed, step) with the normalised reward/cost of the same evaluation episodes as
  the final row (off the training clock) and the trainer's ν then; and
  ``<out>/presa_<task>_<κ>_curve_<method>.png`` drawing it.
Per-run training metrics go to ``<runs>/<seed>/<method>/metrics.csv``, the trained policy to
``policy.pt`` next to it.

Protocol (PreSa §6.1): synthetic feedback from the dataset at κ; π_ref is a
fresh [256, 256] tanh-Gaussian MLP (dropout per Table 4) BC-trained on all segments; every method
starts from that π_ref and learns from the same feedback; deterministic evaluation in the real
environment, DSRL-normalised. ``--reference high-reward`` instead starts every method from a
tanh-Gaussian π_ref BC-trained on the top 30 % episodes by reward
(:func:`retrofit.pretrain.pretrain_reference` with ``policy="tanh-gaussian"``, as recorded):
the retrofit use case, a user's high-reward policy aligned with feedback. Reduced budget by
default (``--pretrain-steps``/``--steps``; paper 30k/100k for BulletGym); ``--shared-reference``
pretrains π_ref and draws the feedback once (seed 0) and varies only the training seed of the
methods and the evaluation episodes.

    nice -n 10 .venv/bin/python benchmarks/presa_table.py --dataset FILE --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from retrofit.atomic import atomic_write_text
from retrofit.thresholds import is_safe_on_average

METHODS = (
    "presa", "bc-safe-seg", "binary-alignment", "presa-no-zref", "preference-only",
    "safety-only", "unified-comparison", "presa-filtered",
)
ORDER = (*METHODS, "safe-rlhf-cdt", "safe-rlhf-cdt-binary", "cdt")
"""Table order; ``--methods`` may also name any registered method: a feedback method learns from
the same feedback, a ground-truth one (``cdt``, ``bc-safe``, ...) from the whole dataset, as in
PreSa's Table 1."""
COLUMNS = ("method", "task", "cost_threshold", "seed", "normalized_reward", "normalized_cost")
DETAIL_COLUMNS = (*COLUMNS, "reward", "cost", "steps", "pretrain_steps", "train_s", "episodes",
                  "updates")
CURVE_COLUMNS = ("method", "seed", "step", "normalized_reward", "normalized_cost", "nu",
                 "train_s")


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    lines = [",".join(columns)]
    for row in rows:
        lines.append(",".join(_fmt(row.get(c, "")) for c in columns))
    atomic_write_text(path, "\n".join(lines) + "\n")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with path.open() as fh:
        return list(csv.DictReader(fh))


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


REFERENCE_LABELS = {
    "segments": "π_ref (BC on all segments)",
    "high-reward": "π_ref (BC on top 30 % episodes by reward)",
}


def evaluate_training(policy: Any, task: str, cost_threshold: float, episodes: int,
                      seed: int) -> Any:
    """Evaluate a policy that is mid-training: dropout off for the episodes, then back on."""
    from retrofit.evaluation import evaluate

    policy.train(False)
    try:
        return evaluate(policy, task, cost_threshold, episodes=episodes, seed=seed)
    finally:
        policy.train(True)


def plot_curves(stem: Path, curve: list[dict[str, Any]], reference: list[dict[str, Any]],
                task: str, cost_threshold: float) -> None:
    """``<stem>_curve_<method>.png`` per method in ``curve``, π_ref's mean as dotted lines."""
    from retrofit.plotting import plot_learning_curve

    ref = None
    if reference:
        ref = (float(np.mean([float(r["normalized_reward"]) for r in reference])),
               float(np.mean([float(r["normalized_cost"]) for r in reference])))
    for method in sorted({r["method"] for r in curve}):
        plot_learning_curve(
            stem.parent / f"{stem.name}_curve_{method}.png",
            [r for r in curve if r["method"] == method], reference=ref,
            title=f"{method} on {task}, κ = {cost_threshold:g}",
        )


def markdown_table(rows: list[dict[str, Any]], settings: dict[str, Any],
                   reference: list[dict[str, Any]]) -> str:
    """Mean ± std over seeds per method, safe when the mean normalised cost ≤ 1."""
    out = [
        f"# PreSa comparison: {settings['task']}, κ = {settings['cost_threshold']:g}",
        "",
        "Normalised reward (↑) and cost (↓, safe ≤ 1), mean ± std over seeds; "
        f"{settings['episodes']} deterministic evaluation episodes per run.",
        "",
        "| method | seeds | normalized reward | normalized cost | safe | ms / update |",
        "|---|---|---|---|---|---|",
    ]
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["method"], []).append(row)
    order = [m for m in ORDER if m in groups] + [m for m in groups if m not in ORDER]
    ref_label = REFERENCE_LABELS[settings.get("reference", "segments")]
    for label, members in [*((m, groups[m]) for m in order),
                           *([(ref_label, reference)] if reference else [])]:
        r = np.array([float(x["normalized_reward"]) for x in members])
        c = np.array([float(x["normalized_cost"]) for x in members])
        timed = [1000 * float(x["train_s"]) / float(x["updates"]) for x in members
                 if x.get("updates") not in (None, "", 0, "0")]
        per_update = f"{np.mean(timed):.1f}" if timed else "–"
        out.append(
            f"| {label} | {len(members)} | {r.mean():.3f} ± {r.std():.3f} | "
            f"{c.mean():.3f} ± {c.std():.3f} | {'yes' if is_safe_on_average(c.mean()) else 'no'} | "
            f"{per_update} |"
        )
    out += ["", "Settings:", "", "```json", json.dumps(settings, indent=2), "```", ""]
    return "\n".join(out)


def parse_args() -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="DSRL-format HDF5 file")
    parser.add_argument("--task", default="OfflineBallRun-v0")
    parser.add_argument("--cost-threshold", type=float, default=20.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="*", default=list(METHODS),
                        help="methods to train (none: only π_ref and the table)")
    parser.add_argument("--import-details", nargs="*", default=[],
                        help="details CSVs of other runs to merge into this table")
    parser.add_argument("--import-curves", nargs="*", default=[],
                        help="curve CSVs of other runs to merge into this curve")
    parser.add_argument("--n-pairs", type=int, default=10_000)
    parser.add_argument("--segment-length", type=int, default=64)
    parser.add_argument("--pretrain-steps", type=int, default=3_000)
    parser.add_argument("--pretrain-lr", type=float, default=1e-4,
                        help="Adam lr of π_ref's BC (Table 4: 1e-4)")
    parser.add_argument("--steps", type=int, default=2_000)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--checkpoint-every", type=int, default=0,
                        help="evaluate every N steps into <stem>_curve.csv (0: final only)")
    parser.add_argument("--shared-reference", action="store_true")
    parser.add_argument("--reference", choices=sorted(REFERENCE_LABELS), default="segments",
                        help="π_ref: the paper's BC on all segments (--pretrain-steps, "
                        "--pretrain-lr) or a tanh-Gaussian BC on the top 30%% episodes by "
                        "reward (BCConfig's 20k steps, lr 1e-3)")
    parser.add_argument("--overrides", type=json.loads, default={},
                        help='JSON: method -> {config field: value}, e.g. '
                             '\'{"cdt": {"batch_size": 64}}\'')
    parser.add_argument("--out", default="docs/results/presa")
    parser.add_argument("--runs", default="runs/presa")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args()


def merge_rows(target: list[dict[str, Any]], extra: list[dict[str, Any]],
               key: tuple[str, ...]) -> None:
    """Append the rows of ``extra`` whose ``key`` columns are not in ``target`` yet."""
    seen = {tuple(str(r[k]) for k in key) for r in target}
    for row in extra:
        if tuple(str(row[k]) for k in key) not in seen:
            target.append(row)
            seen.add(tuple(str(row[k]) for k in key))


def result_row(method: str, task: str, args: argparse.Namespace, seed: int, result: Any,
               steps: int, pretrain_steps: int, train_s: float) -> dict[str, Any]:
    """One details row (``DETAIL_COLUMNS``) from an evaluation result."""
    return {
        "method": method, "task": task, "cost_threshold": args.cost_threshold, "seed": seed,
        "normalized_reward": result.normalized_reward,
        "normalized_cost": result.normalized_cost, "reward": result.reward,
        "cost": result.cost, "steps": steps, "pretrain_steps": pretrain_steps,
        "train_s": train_s, "episodes": args.episodes,
    }


def load_or_train_reference(args: argparse.Namespace, dataset: Any, feedback: Any,
                            data_seed: int, pretrain_steps: int) -> Any:
    """π_ref for ``data_seed``: from ``<runs>`` when cached there, else trained and saved."""
    from retrofit.methods.presa import presa_reference
    from retrofit.policies.io import load_policy, save_policy
    from retrofit.pretrain import BCConfig, pretrain_reference

    tag = (f"{pretrain_steps}_{args.pretrain_lr:g}" if args.reference == "segments"
           else f"high-reward_{pretrain_steps}")
    policy_file = Path(args.runs) / f"reference_seed{data_seed}_{tag}.pt"
    if policy_file.is_file():
        return load_policy(policy_file)
    start = time.perf_counter()
    if args.reference == "segments":
        reference = presa_reference(
            feedback, steps=args.pretrain_steps, device=args.device, seed=data_seed,
            learning_rate=args.pretrain_lr, progress=False,
        )
    else:
        reference = pretrain_reference(  # the tanh-Gaussian docs/presa.md's tables used
            dataset, BCConfig(policy="tanh-gaussian"), device=args.device, seed=data_seed,
            progress=False,
        )
    print(f"reference seed {data_seed}: {time.perf_counter() - start:.0f} s", flush=True)
    save_policy(reference, policy_file)
    return reference


def table_settings(args: argparse.Namespace, task: str, dataset: Any,
                   pretrain_steps: int) -> dict[str, Any]:
    """The settings block written under the table (with the paper's budget for comparison)."""
    from retrofit.methods.presa import PRESA_PRESETS
    from retrofit.tasks import task_info

    domain = task_info(task).domain
    preset = PRESA_PRESETS.get(domain, PRESA_PRESETS["bullet"])
    domain_name = "SafetyGym" if domain == "safety" else "BulletGym"
    return {
        "task": task, "cost_threshold": args.cost_threshold, "dataset": str(args.dataset),
        "n_transitions": len(dataset), "n_episodes": dataset.n_episodes,
        "n_pairs": args.n_pairs, "segment_length": args.segment_length,
        "pretrain_steps": pretrain_steps, "pretrain_lr": args.pretrain_lr,
        "steps": args.steps,
        "reference": args.reference,
        "paper_steps": f"{preset['pretrain_steps']} pretraining + {preset['steps']} alignment "
                       f"(Table 4, {domain_name})",
        "episodes": args.episodes, "seeds": args.seeds, "shared_reference": args.shared_reference,
        "git_commit": _git_commit(), "hardware": f"{platform.processor() or platform.machine()}, "
        f"{args.threads} torch thread(s), device {args.device}",
        "other_hyperparameters": (f"PresaConfig defaults: Table 4 {domain_name} preset, except "
                                  "BulletGym η = 1 and the clamped z_ref (docs/presa.md)"),
        "overrides": args.overrides,
    }


def main() -> None:
    """Run the comparison (resuming rows already in the CSV) and write the table."""
    args = parse_args()
    # ---- seeding and threads: one marked block
    torch.set_num_threads(args.threads)

    from retrofit import feedback as fb_mod
    from retrofit.data.dataset import TrajectoryDataset
    from retrofit.evaluation import evaluate
    from retrofit.methods.registry import get_method
    from retrofit.policies.io import save_policy
    from retrofit.pretrain import BCConfig
    from retrofit.retrofitter import Retrofitter
    from retrofit.tasks import task_info

    task = task_info(args.task).env_id
    short = task.removeprefix("Offline").removesuffix("-v0").removesuffix("Gymnasium")
    stem = f"presa_{short}_{args.cost_threshold:g}"
    out, runs = Path(args.out), Path(args.runs)
    csv_path, details_path = out / f"{stem}.csv", out / f"{stem}_details.csv"
    ref_path, curve_path = out / f"{stem}_reference.csv", out / f"{stem}_curve.csv"
    rows, ref_rows, curve = (_read_rows(p) for p in (details_path, ref_path, curve_path))
    for extra in args.import_details:
        imported = _read_rows(Path(extra))
        merge_rows(ref_rows, [r for r in imported if r["method"] == "reference"],
                   ("method", "seed"))
        merge_rows(rows, [r for r in imported if r["method"] != "reference"], ("method", "seed"))
    for extra in args.import_curves:
        merge_rows(curve, _read_rows(Path(extra)), ("method", "seed", "step"))
    done = {(r["method"], int(r["seed"])) for r in rows}
    rows.sort(key=lambda r: (int(r["seed"]), METHODS.index(r["method"])
                             if r["method"] in METHODS else len(METHODS)))
    curve.sort(key=lambda r: (r["method"], int(r["seed"]), int(r["step"])))
    dataset = TrajectoryDataset.from_hdf5(args.dataset, task=task)
    pretrain_steps = args.pretrain_steps if args.reference == "segments" else BCConfig().steps
    settings = table_settings(args, task, dataset, pretrain_steps)

    def flush() -> None:
        _write_csv(csv_path, COLUMNS, rows)
        _write_csv(details_path, DETAIL_COLUMNS, rows)
        _write_csv(ref_path, DETAIL_COLUMNS, ref_rows)
        if curve:
            _write_csv(curve_path, CURVE_COLUMNS, curve)
            plot_curves(out / stem, curve, ref_rows, task, args.cost_threshold)
        atomic_write_text(out / f"{stem}.md", markdown_table(rows, settings, ref_rows))

    for seed in args.seeds:
        data_seed = 0 if args.shared_reference else seed
        feedback = fb_mod.synthesize(
            dataset, n_pairs=args.n_pairs, segment_length=args.segment_length,
            cost_threshold=args.cost_threshold, seed=data_seed,
        )
        reference = load_or_train_reference(args, dataset, feedback, data_seed, pretrain_steps)
        if not any(int(r["seed"]) == data_seed for r in ref_rows):
            res = evaluate(reference, task, args.cost_threshold, episodes=args.episodes,
                           seed=1000 + data_seed)
            ref_rows.append(result_row("reference", task, args, data_seed, res, 0,
                                       pretrain_steps, 0.0))
            print(f"reference: {res}", flush=True)
            flush()
        for method in args.methods:
            if (method, seed) in done:
                continue
            spec = get_method(method)
            names = {f.name for f in dataclasses.fields(spec.config)}
            options = dict(args.overrides.get(method, {}))
            if "cost_threshold" in names:
                options.setdefault("cost_threshold", args.cost_threshold)
            data = (dataset,) if spec.data_kind == "transitions" else (feedback,)
            retrofitter = Retrofitter(
                reference, method, device=args.device, seed=seed, progress=False,
                log_dir=runs / str(seed) / method, overwrite=True,  # an unfinished run's logs
                **options,
            )
            curve[:] = [r for r in curve if (r["method"], int(r["seed"])) != (method, seed)]

            def checkpoint(step: int, trainer: Any, method: str = method, seed: int = seed) -> None:
                res = evaluate_training(trainer.policy, task, args.cost_threshold,
                                        episodes=args.episodes, seed=1000 + seed)
                curve.append({
                    "method": method, "seed": seed, "step": step,
                    "normalized_reward": res.normalized_reward,
                    "normalized_cost": res.normalized_cost,
                    "nu": float(getattr(trainer, "nu", float("nan"))),
                    "train_s": trainer.train_wall_clock_s,
                })
                _write_csv(curve_path, CURVE_COLUMNS, curve)
                print(f"{method} seed {seed} step {step}: reward {res.normalized_reward:.3f} "
                      f"cost {res.normalized_cost:.3f}", flush=True)

            policy = retrofitter.fit(
                *data, steps=args.steps, callback=checkpoint if args.checkpoint_every else None,
                callback_every=args.checkpoint_every,
            )
            save_policy(policy, runs / str(seed) / method / "policy.pt")  # re-evaluable later
            res = evaluate(policy, task, args.cost_threshold, episodes=args.episodes,
                           seed=1000 + seed)
            row = result_row(method, task, args, seed, res, args.steps, pretrain_steps,
                             retrofitter.train_wall_clock_s)
            assert retrofitter.trainer is not None
            row["updates"] = retrofitter.trainer.steps_done
            rows.append(row)
            print(f"{method} seed {seed} ({retrofitter.train_wall_clock_s:.0f} s): "
                  f"reward {res.normalized_reward:.3f} cost {res.normalized_cost:.3f}", flush=True)
            flush()
    flush()


if __name__ == "__main__":
    main()
