"""Retrofitting vs starting over: the protocol of docs/protocol.md, one task per process.

Each *variant* is a registered method with a budget and config overrides (``VARIANTS``). Every
variant of a task runs through the comparison harness (``retrofit.compare.run_compare``) in its
own folder ``OUT/<Task>/<variant>/``, so its cells resume independently; all variants of a task
share one π_ref per seed (``OUT/<Task>/reference/``, linked into each variant folder), as the
paired comparison requires. ``--collect`` adds every finished cell under ``OUT`` to
``cells.csv`` with the variant as ``method`` and the seed's role as ``split``; the CSV's rows
stay (``OUT`` is not in the repository, so a fresh checkout has only some folders), and a cell
whose scores differ from its committed row is refused, not replaced.

    OMP_NUM_THREADS=1 python scripts/retrofit_vs_scratch.py BallCircle --split selection
    OMP_NUM_THREADS=1 python scripts/retrofit_vs_scratch.py BallCircle --split report \\
        --variants prefine,sft-only-2k,bc-safe-2k,bc-safe-full-2k
    python scripts/retrofit_vs_scratch.py --collect docs/results/retrofit-vs-scratch/cells.csv
    python scripts/retrofit_vs_scratch.py --collect CSV --only VARIANT,...   # these only

Rerunning a command skips its finished cells (resumable in parts of any length).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SELECTION_SEEDS = (0, 1, 2)
REPORT_SEEDS = (3, 4, 5, 6, 7)
DEFAULT_OUT = Path("runs/retrofit-vs-scratch")


@dataclass(frozen=True)
class Variant:
    """One row of the comparison: a registered method, its budget and config overrides."""

    method: str
    steps: int
    overrides: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    # CompareConfig fields of the split; top_fraction is 0.5 (the better half of SAFE, the
    # library default when these cells began) unless a variant names it
    split: dict[str, Any] = field(default_factory=dict)
    # π_ref's family (CompareConfig.reference_policy); each family has its own shared folder
    reference: str = "clipped-gaussian"
    reference_kl_weight: float | None = None  # the VAE π_ref's β_KL (None: BCQ's 0.5)

    def reference_folder(self) -> str:
        """The task's shared π_ref folder of this variant's reference (``reference``,
        ``reference-vae``, ``reference-vae-kl0.05``)."""
        if self.reference == "clipped-gaussian":
            return "reference"
        weight = "" if self.reference_kl_weight is None else f"-kl{self.reference_kl_weight:g}"
        return f"reference-{self.reference}{weight}"


VARIANTS: dict[str, Variant] = {
    # PREFINE (Eq. 6-9): β = 0.2 (A.4, BulletGym), λ as named.
    # Learning rates are explicit: the library's BulletGym default changed to 3e-5 after (and
    # because of) these selection cells, and a variant must mean the same run forever.
    "prefine-l0.3-20k": Variant("prefine", 20_000, {"sft_weight": 0.3, "learning_rate": 3e-4},
                                "default before #21"),
    "prefine-l0.3-2k": Variant("prefine", 2_000, {"sft_weight": 0.3, "learning_rate": 3e-4}),
    "prefine-l0.1-20k": Variant("prefine", 20_000, {"sft_weight": 0.1, "learning_rate": 3e-4}),
    "prefine-l1-20k": Variant("prefine", 20_000, {"sft_weight": 1.0, "learning_rate": 3e-4},
                              "paper-literal A.4"),
    "prefine-l0.3-lr3e-5-20k": Variant(
        "prefine", 20_000, {"sft_weight": 0.3, "learning_rate": 3e-5},
        "added after the first selection cells (docs/protocol.md, amendment 1)"),
    "prefine-l1-lr3e-5-20k": Variant(
        "prefine", 20_000, {"sft_weight": 1.0, "learning_rate": 3e-5},
        "paper's λ at the chosen step size (docs/protocol.md, amendment 2)"),
    "prefine-l0.1-lr3e-5-20k": Variant(
        "prefine", 20_000, {"sft_weight": 0.1, "learning_rate": 3e-5},
        "λ 0.1 at the chosen step size (docs/protocol.md, amendment 4)"),
    "prefine-l0.3-lr3e-5-ema-20k": Variant(
        "prefine", 20_000,
        {"sft_weight": 0.3, "learning_rate": 3e-5, "weight_average_decay": 0.999},
        "returns the EMA of the weights (docs/protocol.md, amendment 4)"),
    "dpo-20k": Variant("dpo", 20_000, {}, "PREFINE with λ = 0 (DPOConfig lr 3e-4)"),
    "dpo-lr3e-5-20k": Variant("dpo", 20_000, {"learning_rate": 3e-5},
                              "λ = 0 at the chosen step size (docs/protocol.md, amendment 2)"),
    "dpo-2k": Variant("dpo", 2_000, {}),
    "prefine-l0.3-lr3e-5-npnear-20k": Variant(
        "prefine", 20_000, {"sft_weight": 0.3, "learning_rate": 3e-5},
        "D_np from the 100 least costly UNSAFE episodes (docs/protocol.md, amendment 3)",
        split={"nonpreferred_pool": "lowest-cost"}),
    "prefine-l0.3-lr3e-5-top100-20k": Variant(
        "prefine", 20_000, {"sft_weight": 0.3, "learning_rate": 3e-5},
        "D_p = the 100 best SAFE episodes (docs/protocol.md, amendment 6)",
        split={"top_fraction": 0.01}),
    "dpo-lr3e-5-top100-20k": Variant(
        "dpo", 20_000, {"learning_rate": 3e-5},
        "λ 0 at the chosen step size on amendment 6's D_p (docs/protocol.md, amendment 9)",
        split={"top_fraction": 0.01}),
    # Amendment 10: PREFINE §5.1's reference class, a VAE (A.4's [256, 256] network), under the
    # default recipe and under A.4's literal settings; SFT-only from the same VAE for the record.
    "prefine-vae-top100-20k": Variant(
        "prefine", 20_000, {"sft_weight": 0.3, "learning_rate": 3e-5},
        "the default recipe from a VAE π_ref (docs/protocol.md, amendment 10)",
        split={"top_fraction": 0.01}, reference="vae"),
    "prefine-vae-paper-top100-20k": Variant(
        "prefine", 20_000, {"sft_weight": 1.0, "learning_rate": 3e-4},
        "PREFINE A.4 literal (λ 1, β 0.2, lr 3e-4) from a VAE π_ref (amendment 10)",
        split={"top_fraction": 0.01}, reference="vae"),
    "sft-only-2k-vae-top100": Variant("sft-only", 2_000, {}, "from a VAE π_ref (amendment 10)",
                                      split={"top_fraction": 0.01}, reference="vae"),
    # Amendment 11: the VAE π_ref with β_KL 0.05 (its latent is used), default recipe; SFT-only
    # from it for the record.
    "prefine-vae-kl0.05-top100-20k": Variant(
        "prefine", 20_000, {"sft_weight": 0.3, "learning_rate": 3e-5},
        "the default recipe from a VAE π_ref with β_KL 0.05 (docs/protocol.md, amendment 11)",
        split={"top_fraction": 0.01}, reference="vae", reference_kl_weight=0.05),
    "sft-only-2k-vae-kl0.05-top100": Variant(
        "sft-only", 2_000, {}, "from the β_KL 0.05 VAE π_ref (amendment 11)",
        split={"top_fraction": 0.01}, reference="vae", reference_kl_weight=0.05),
    "prefine-preset-top100-20k": Variant(
        "prefine", 20_000, {}, "the library's domain preset (SafetyGym: PREFINE A.4's β 0.05, "
        "λ 1.6, lr 3e-4) on amendment 6's D_p; for the record on HalfCheetahVelocity "
        "(docs/protocol.md, amendment 8)", split={"top_fraction": 0.01}),
    # PreSa (issue 21 item 7; docs/protocol.md, amendments 5 and 12): z_ref × η on selection
    # cells, from the shared π_ref (pretrain_steps = 0), segment feedback synthesised from the
    # default's D_p ∪ D_np (amendment 6's 100 best SAFE episodes).
    "presa-clamped-eta1-top100-20k": Variant(
        "presa", 20_000, {"z_ref": "clamped", "eta": 1.0}, "PreSa's library default (issue 14)",
        split={"top_fraction": 0.01}),
    "presa-clamped-eta0.1-top100-20k": Variant(
        "presa", 20_000, {"z_ref": "clamped", "eta": 0.1}, split={"top_fraction": 0.01}),
    "presa-mean-eta1-top100-20k": Variant(
        "presa", 20_000, {"z_ref": "mean", "eta": 1.0}, split={"top_fraction": 0.01}),
    "presa-mean-eta0.1-top100-20k": Variant(
        "presa", 20_000, {"z_ref": "mean", "eta": 0.1},
        "paper-literal (§5.1 z_ref, Table 4 η)", split={"top_fraction": 0.01}),
    # Amendment 13: the library default with ν's dual step scaled to the budget (Table 4's 0.005
    # is for 100 000 updates; × 5 for 20 000), and that plus β 0.2 (a smaller score scale keeps
    # Eq. 9's sigmoid out of saturation, where ν's pull on the policy vanishes).
    "presa-clamped-eta1-nu0.025-top100-20k": Variant(
        "presa", 20_000, {"z_ref": "clamped", "eta": 1.0, "nu_learning_rate": 0.025},
        "ν's step × 5 (budget 20k of Table 4's 100k)", split={"top_fraction": 0.01}),
    "presa-clamped-eta1-nu0.025-beta0.2-top100-20k": Variant(
        "presa", 20_000,
        {"z_ref": "clamped", "eta": 1.0, "nu_learning_rate": 0.025, "beta": 0.2},
        "ν's step × 5 and β 0.2", split={"top_fraction": 0.01}),
    # Baselines, each at the two budgets the selection cells choose between.
    "sft-only-2k": Variant("sft-only", 2_000),
    "sft-only-20k": Variant("sft-only", 20_000),
    "bc-safe-2k": Variant("bc-safe", 2_000, {}, "BC-Safe from scratch on D_p (∪ D_np, filtered)"),
    "bc-safe-20k": Variant("bc-safe", 20_000),
    "sft-only-2k-top100": Variant("sft-only", 2_000, {}, "on amendment 6's D_p",
                                  split={"top_fraction": 0.01}),
    "bc-safe-2k-top100": Variant("bc-safe", 2_000, {}, "on amendment 6's D_p",
                                 split={"top_fraction": 0.01}),
    "bc-safe-full-2k": Variant("bc-safe-full", 2_000, {}, "BC-Safe on all safe episodes"),
    "bc-safe-full-20k": Variant("bc-safe-full", 20_000),
}
# The names the report uses for the variants the rules of docs/protocol.md chose (the summary
# script recomputes the choice from the selection cells and says if it disagrees with this).
REPORT_NAMES = {
    "prefine-l0.3-lr3e-5-top100-20k": "prefine",
    "sft-only-2k-top100": "sft-only",
    "bc-safe-2k-top100": "bc-safe",
    "bc-safe-full-2k": "bc-safe-full",
}
SELECTION_ORDER = (
    "prefine-l0.3-20k", "dpo-20k", "sft-only-2k", "bc-safe-2k", "bc-safe-full-2k",
    "prefine-l0.1-20k", "sft-only-20k", "bc-safe-20k", "bc-safe-full-20k", "dpo-2k",
    "prefine-l0.3-2k", "prefine-l1-20k", "prefine-l0.3-lr3e-5-20k", "prefine-l1-lr3e-5-20k",
    "dpo-lr3e-5-20k", "prefine-l0.3-lr3e-5-npnear-20k", "prefine-l0.1-lr3e-5-20k",
    "prefine-l0.3-lr3e-5-ema-20k", "presa-clamped-eta1-top100-20k",
    "presa-clamped-eta0.1-top100-20k", "presa-mean-eta1-top100-20k",
    "presa-mean-eta0.1-top100-20k", "prefine-l0.3-lr3e-5-top100-20k",
    "sft-only-2k-top100", "bc-safe-2k-top100", "dpo-lr3e-5-top100-20k", "prefine-vae-top100-20k",
    "sft-only-2k-vae-top100", "prefine-vae-paper-top100-20k", "prefine-vae-kl0.05-top100-20k",
    "sft-only-2k-vae-kl0.05-top100", "presa-clamped-eta1-nu0.025-top100-20k",
    "presa-clamped-eta1-nu0.025-beta0.2-top100-20k",
)


def variant_folder(out: Path, task: str, name: str) -> Path:
    """A variant's harness folder; its ``reference`` links to the task's shared π_ref folder of
    the variant's reference family."""
    folder = out / task / name
    folder.mkdir(parents=True, exist_ok=True)
    shared_name = VARIANTS[name].reference_folder()
    (out / task / shared_name).mkdir(parents=True, exist_ok=True)
    link = folder / "reference"
    if not link.exists():
        link.symlink_to(Path("..") / shared_name, target_is_directory=True)
    return folder


def run(task: str, split: str, names: list[str], out: Path, thresholds: tuple[float, ...],
        seeds: tuple[int, ...] | None, eval_episodes: int, bc_steps: int) -> None:
    """Run every missing cell of ``names`` × κ × the split's seeds for ``task``."""
    from retrofit.compare import CompareConfig, run_compare
    from retrofit.data.splits import PAPER_TOP_FRACTION
    from retrofit.suite.runner import find_data, settings_for

    settings = settings_for(task)
    source = find_data(settings)
    if source is None:
        raise SystemExit(f"no data for {task}: run `retrofit suite {task}` once to collect it")
    chosen = seeds if seeds is not None else (
        SELECTION_SEEDS if split == "selection" else REPORT_SEEDS)
    for name in names:
        variant = VARIANTS[name]
        config = CompareConfig(
            task=settings.task, methods=(variant.method,), out=variant_folder(out, task, name),
            dataset=str(source.path), cost_thresholds=thresholds, seeds=chosen,
            steps=variant.steps, eval_episodes=eval_episodes, checkpoint_every=0,
            bc_steps=bc_steps, n_preferred=settings.n_preferred,
            n_nonpreferred=settings.n_nonpreferred, device="cpu", threads=1, isolate=False,
            reference_std=0.2, reference_policy=variant.reference,
            reference_kl_weight=variant.reference_kl_weight,
            overrides={variant.method: dict(variant.overrides)},
            **{"top_fraction": PAPER_TOP_FRACTION, **variant.split},
        )
        print(f"== {task} {name} ({variant.method}, {variant.steps} steps, "
              f"{variant.overrides}) κ={thresholds} seeds={chosen}", flush=True)
        run_compare(config)


def reproduce(task: str, name: str, seed: int, cost_threshold: float, out: Path,
              scratch: Path) -> bool:
    """Rerun one finished cell in a fresh folder (same π_ref file) and compare its scores.

    Prints both rows; True when normalised reward and cost agree to every printed digit.
    """
    import shutil

    folder = out / task / name
    stored = json.loads((folder / "cells" /
                         f"{VARIANTS[name].method}__k{cost_threshold:g}__s{seed}.json").read_text())
    if scratch.exists():
        raise SystemExit(f"{scratch} exists; pass an empty --scratch folder")
    shared = VARIANTS[name].reference_folder()
    (scratch / task / shared).mkdir(parents=True)
    for suffix in (".json", ".pt"):
        shutil.copy2(out / task / shared / f"seed{seed}{suffix}",
                     scratch / task / shared / f"seed{seed}{suffix}")
    run(task, "selection", [name], scratch, (cost_threshold,), (seed,),
        int(stored["settings"]["eval_episodes"]), int(stored["settings"]["bc_steps"]))
    again = json.loads((scratch / task / name / "cells" /
                        f"{VARIANTS[name].method}__k{cost_threshold:g}__s{seed}.json").read_text())
    same = True
    for key in ("normalized_reward", "normalized_cost"):
        a, b = stored["row"][key], again["row"][key]
        same &= repr(a) == repr(b)
        print(f"{task} {name} κ={cost_threshold:g} seed={seed} {key}: stored {a!r}  rerun {b!r}")
    return same


CELL_COLUMNS = ("method", "variant", "task", "cost_threshold", "seed", "split", "normalized_reward",
                "normalized_cost", "episodes", "updates", "train_wall_clock_s", "base_method",
                "overrides", "threads", "cpu")


CELL_KEY = ("task", "variant", "cost_threshold", "seed")
SCORE_COLUMNS = ("normalized_reward", "normalized_cost")


def cell_key(row: dict[str, Any]) -> tuple[str, str, float, int]:
    """A row's identity in ``cells.csv``, also its order there: (task, variant, κ, seed)."""
    return (str(row["task"]), str(row["variant"]), float(row["cost_threshold"]), int(row["seed"]))


def merge_cells(kept: list[dict[str, Any]], found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``kept`` (the CSV's rows) with the cells of ``found`` that it lacks, sorted.

    The run folders are not in the repository, so a fresh checkout holds only some of them: a
    row the folders no longer have stays. A cell present in both keeps the CSV's row when the
    scores agree to every digit (the wall clock of a rerun differs) and is refused when they do
    not — a rerun that disagrees is a finding, never a silent replacement.
    """
    rows = {cell_key(r): dict(r) for r in kept}
    for row in found:
        key = cell_key(row)
        old = rows.get(key)
        if old is None:
            rows[key] = row
            continue
        differ = [c for c in SCORE_COLUMNS if repr(float(old[c])) != repr(float(row[c]))]
        if differ:
            raise SystemExit(
                f"cells.csv already has {dict(zip(CELL_KEY, key, strict=True))} with "
                + ", ".join(f"{c} {float(old[c])!r}" for c in differ)
                + "; the run folder's cell has "
                + ", ".join(f"{c} {float(row[c])!r}" for c in differ)
                + ". Nothing was written: find out why the cell changed, or move the CSV away "
                "to collect afresh."
            )
    return sorted(rows.values(), key=cell_key)


def folder_cpu(variant_dir: Path) -> str:
    """The CPU model of a variant folder's latest run (its ``run.json``), for cells recorded
    before each cell kept its own; "" when unknown."""
    run_file = variant_dir / "run.json"
    if not run_file.is_file():
        return ""
    return str(json.loads(run_file.read_text()).get("hardware_start", {}).get("cpu", ""))


def collect(out: Path, csv_path: Path, only: tuple[str, ...] | None = None) -> int:
    """Add one row per finished (variant, task, κ, seed) cell under ``out`` (π_ref as
    ``reference``) to ``csv_path``, keeping its rows (:func:`merge_cells`); returns the count.

    ``only``: collect these variants (π_ref's folders by their names, e.g. ``reference``)
    and no others — cells made on another CPU than the CSV's rows differ in their digits
    (``cpu`` column), so a π_ref remade elsewhere can be left out while the cells trained
    from it go in."""
    from retrofit.atomic import atomic_write_text
    from retrofit.suite.runner import settings_for
    from retrofit.tasks import normalized_score

    def wanted(name: str) -> bool:
        return only is None or name in only

    rows: list[dict[str, Any]] = []
    for task_dir in sorted(p for p in out.iterdir() if p.is_dir()):
        cost_thresholds: set[float] = set()
        for variant_dir in sorted(p for p in task_dir.iterdir() if p.is_dir()):
            records = [json.loads(f.read_text())
                       for f in sorted((variant_dir / "cells").glob("*.json"))]
            # every variant's κ values, collected or not: π_ref gets a row at each
            cost_thresholds.update(float(r["row"]["cost_threshold"]) for r in records)
            if not wanted(variant_dir.name):
                continue
            cpu = folder_cpu(variant_dir)
            for record in records:
                row = record["row"]
                seed = int(row["seed"])
                variant = VARIANTS.get(variant_dir.name)
                rows.append({
                    "method": REPORT_NAMES.get(variant_dir.name, variant_dir.name),
                    "variant": variant_dir.name, "task": row["task"],
                    "cost_threshold": row["cost_threshold"], "seed": seed,
                    "split": "selection" if seed in SELECTION_SEEDS else "report",
                    "normalized_reward": row["normalized_reward"],
                    "normalized_cost": row["normalized_cost"],
                    "episodes": record["settings"]["eval_episodes"], "updates": row["updates"],
                    "train_wall_clock_s": row["train_wall_clock_s"], "base_method": row["method"],
                    "overrides": json.dumps(variant.overrides if variant else {}), "threads": 1,
                    "cpu": record.get("cpu") or cpu,
                })
        references = sorted(task_dir.glob("reference*/seed*.json"))
        for ref_file in references:
            family = ref_file.parent.name  # reference, reference-vae
            if not wanted(family):
                continue
            record = json.loads(ref_file.read_text())
            seed = int(record["seed"])
            task = settings_for(task_dir.name).task  # the env id (…-v0, …Gymnasium-v1)
            for cost_threshold in sorted(cost_thresholds):
                reward, cost = normalized_score(task, record["reward"], record["cost"],
                                                cost_threshold)
                rows.append({
                    "method": family, "variant": family, "task": task,
                    "cost_threshold": cost_threshold, "seed": seed,
                    "split": "selection" if seed in SELECTION_SEEDS else "report",
                    "normalized_reward": float(reward), "normalized_cost": float(cost),
                    "episodes": record["eval_episodes"], "updates": record["bc_steps"],
                    "train_wall_clock_s": record["bc_wall_clock_s"], "base_method": "bc",
                    "overrides": json.dumps(
                        {"reference_std": record["reference_std"]} if family == "reference"
                        else {k: record[k] for k in ("reference_policy", "reference_kl_weight")
                              if k in record}),
                    "threads": 1, "cpu": record.get("cpu", ""),
                })
    kept: list[dict[str, Any]] = []
    if csv_path.exists():
        with csv_path.open(newline="") as handle:
            kept = list(csv.DictReader(handle))
    rows = merge_cells(kept, rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CELL_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(csv_path, buffer.getvalue())
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    """Command line: run one task's split, or collect every finished cell into a CSV."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task", nargs="?", help="suite task name, e.g. BallCircle")
    parser.add_argument("--split", choices=("selection", "report"), default="selection")
    parser.add_argument("--variants", default=",".join(SELECTION_ORDER),
                        help=f"comma-separated; known: {', '.join(VARIANTS)}")
    parser.add_argument("--thresholds", default="20", help="κ values, comma-separated")
    parser.add_argument("--seeds", default=None, help="override the split's seeds")
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--bc-steps", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--collect", type=Path, default=None, metavar="CSV")
    parser.add_argument("--only", default=None, metavar="VARIANTS",
                        help="with --collect: only these variants (and π_ref folders, e.g. "
                             "reference), comma-separated")
    parser.add_argument("--reproduce", default=None, metavar="VARIANT:SEED",
                        help="rerun one finished cell of TASK into --scratch and compare")
    parser.add_argument("--scratch", type=Path, default=Path("runs/reproduce"))
    args = parser.parse_args(argv)
    if args.collect is not None:
        only = tuple(n for n in args.only.split(",") if n) if args.only else None
        print(f"{collect(args.out, args.collect, only)} rows -> {args.collect}")
        return 0
    if not args.task:
        parser.error("name a task, or pass --collect CSV")
    names = [n for n in args.variants.split(",") if n]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    if os.environ.get("OMP_NUM_THREADS") != "1":
        print("note: run with OMP_NUM_THREADS=1 (the protocol's thread count)", file=sys.stderr)
    thresholds = tuple(float(k) for k in args.thresholds.split(","))
    if args.reproduce:
        name, seed = args.reproduce.rsplit(":", 1)
        same = reproduce(args.task, name, int(seed), thresholds[0], args.out, args.scratch)
        print("reproduced exactly" if same else "DIFFERENT")
        return 0 if same else 1
    seeds = tuple(int(s) for s in args.seeds.split(",")) if args.seeds else None
    run(args.task, args.split, names, args.out, thresholds, seeds, args.eval_episodes,
        args.bc_steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
