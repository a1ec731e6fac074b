"""``retrofit suite TASK``: find or make the task's data, then π_ref → PREFINE → evaluation → table.

Data, first found wins:

1. ``dataset=FILE`` (``--dataset``);
2. DSRL's own file (``$DSRL_DATASET_DIR`` or ``~/.dsrl/datasets``, under DSRL's file name);
3. a file this project collected for the task in ``data_dir`` (``Safety<Task>-<cost>-<episodes>``);
4. the file shipped in ``retrofit/data/default``;
5. a new collection in the real environment with the task's settings
   (:mod:`retrofit.suite.settings`), written to ``data_dir``; trained behaviour snapshots are
   cached in ``data_dir/cache/<Task>``, so an interrupted collection resumes after its last
   finished PPO run. ``collect=False`` (``--no-collect``) raises instead, saying how to get data.

Everything that can be checked is checked before any training: the task name, the methods, the
file's observation/action shapes against the environment's, and that every κ × seed split has
N_p safe and N_np unsafe episodes (PREFINE §5.1). The training itself is the comparison harness
(:func:`retrofit.compare.run_compare`): π_ref by BC on the top-30 % reward episodes
(``retrofit.pretrain.pretrain_reference``), each method through ``Retrofitter(π_ref, method)``,
each (method, κ, seed) cell evaluated in the real environment and kept as a JSON file, so a
finished cell is not rerun. On top of the harness's files the suite writes ``results.csv`` with
π_ref's rows added (method ``reference``), ``table.md`` (mean ± std over seeds per κ),
``reward_cost.png`` (the dataset's reward–cost cloud and each method per κ;
:mod:`retrofit.suite.figure`) and ``suite.json`` (settings, data source, warnings and wall-clock
per phase). Data that cannot support a result (:mod:`retrofit.suite.checks`: best trajectories
that earn little, a split without high-reward safe episodes, a π_ref that earns nothing) are
said so in each of them, with the ``retrofit collect`` command of a larger budget.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from retrofit.atomic import atomic_write_text
from retrofit.errors import ConfigError, DataError
from retrofit.suite.checks import DataWarning, dataset_warnings, format_warnings, reference_warnings
from retrofit.suite.settings import TaskSettings, settings_for
from retrofit.thresholds import is_safe_on_average

DEFAULT_DATA_DIR = Path("runs/suite/data")


@dataclass(frozen=True)
class DataSource:
    """Where a suite run's data came from.

    kind: ``file`` (given), ``dsrl`` (DSRL's own file), ``data-dir`` (collected earlier),
    ``shipped`` (retrofit/data/default) or ``collected`` (made by this run).
    path: the HDF5 file. collect_wall_clock_s: this run's collection time (``collected`` only).
    """

    kind: str
    path: Path
    collect_wall_clock_s: float | None = None


def shipped_dir() -> Path:
    """The folder of the datasets that ship with retrofit."""
    return Path(str(resources.files("retrofit.data") / "default"))


def dsrl_file(settings: TaskSettings) -> Path:
    """Where DSRL's own data file for the task would be (it may not exist; never downloads)."""
    from retrofit.data import dsrl_files

    return dsrl_files.dsrl_folder() / dsrl_files.dsrl_file(settings.task).filename


def collected_files(settings: TaskSettings, folder: Path) -> list[Path]:
    """This task's collected files in ``folder``: ``Safety<Task>-<max cost>-<episodes>.hdf5``.

    Files in ``folder`` itself and in ``folder/<Task>`` (one folder per task) count.
    """
    stem = re.escape("Safety" + settings.task.removeprefix("Offline"))
    pattern = re.compile(stem + r"-\d+-\d+\.hdf5")
    found: list[Path] = []
    for where in (folder, folder / settings.name):
        if where.is_dir():
            found += sorted(p for p in where.iterdir() if pattern.fullmatch(p.name))
    return found


def _pick(settings: TaskSettings, files: list[Path], folder: Path) -> Path | None:
    """One file of ``files``; with several, the one with the settings' episode count."""
    if len(files) <= 1:
        return files[0] if files else None
    wanted = [p for p in files if p.stem.endswith(f"-{settings.collection.episodes}")]
    if len(wanted) == 1:
        return wanted[0]
    raise DataError(
        f"{folder} holds {len(files)} files for {settings.name} "
        f"({', '.join(p.name for p in files)}) and none is the one the settings ask for; "
        "pass the one to use with --dataset FILE."
    )


def how_to_get_data(settings: TaskSettings, data_dir: Path) -> str:
    """The ways to get data for a task, for error messages."""
    c = settings.collection
    return (
        f"Get data for {settings.name} in one of these ways: put DSRL's file at "
        f"{dsrl_file(settings)} (or set DSRL_DATASET_DIR to its folder); pass --dataset FILE "
        f"(any DSRL-format HDF5 file of {settings.task}); or run without --no-collect to make "
        f"it in the real environment with the task's settings ({c.episodes} episodes, "
        f"{c.runs} PPO runs × {c.train_steps} steps), the same as `"
        f"{c.command(settings.name, str(data_dir))}`."
    )


def find_data(settings: TaskSettings, *, dataset: str | Path | None = None,
              data_dir: str | Path | None = None) -> DataSource | None:
    """The data to use, in the order of the module docstring (steps 1–4); None if none."""
    if dataset is not None:
        path = Path(dataset)
        if not path.is_file():
            raise DataError(f"dataset={str(dataset)!r}: no such file. Pass a DSRL-format HDF5 "
                            f"file of {settings.task}, or leave --dataset out to find or make one.")
        return DataSource("file", path)
    official = dsrl_file(settings)
    if official.is_file():
        return DataSource("dsrl", official)
    folder = Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
    for kind, where in (("data-dir", folder), ("shipped", shipped_dir())):
        path = _pick(settings, collected_files(settings, where), where)
        if path is not None:
            return DataSource(kind, path)
    return None


def collect_data(settings: TaskSettings, data_dir: str | Path, *, progress: bool = True
                 ) -> DataSource:
    """Collect the task's data with its settings into ``data_dir/<Task>`` (cache alongside)."""
    from retrofit.collect import collect_dataset, dsrl_filename

    folder = Path(data_dir) / settings.name
    folder.mkdir(parents=True, exist_ok=True)
    c = settings.collection
    tic = time.perf_counter()
    data = collect_dataset(settings.task, folder, c.episodes, progress=progress,
                           cache_dir=Path(data_dir) / "cache" / settings.name,
                           **c.collect_kwargs())
    return DataSource("collected", folder / dsrl_filename(data), time.perf_counter() - tic)


def check_dataset(settings: TaskSettings, data: Any, path: Path) -> None:
    """Raise ``DataError`` unless ``data`` fits the task: shapes, stored task, κ × seed splits."""
    from retrofit.envs import make_env

    env = make_env(settings.task)
    try:
        obs_shape = tuple(env.observation_space.shape)
        act_shape = tuple(env.action_space.shape)
    finally:
        env.close()
    found = (tuple(data.observations.shape[1:]), tuple(data.actions.shape[1:]))
    stored = getattr(data, "task", None)
    if found != (obs_shape, act_shape):
        raise DataError(
            f"{path}: its observations have shape {found[0]} and actions {found[1]}, but "
            f"{settings.task} has observations {obs_shape} and actions {act_shape}"
            + (f"; the file says it holds {stored}'s data" if stored else "")
            + f". Pass a file of {settings.task}, or run `retrofit suite` for the file's task."
        )
    if stored and stored != settings.task:
        raise DataError(
            f"{path} holds {stored}'s data (its retrofit_task attribute), not {settings.task}'s; "
            f"pass a file of {settings.task} or run `retrofit suite {stored}`."
        )
    for cost_threshold in settings.cost_thresholds:
        for seed in settings.seeds:
            try:
                data.split_preferences(cost_threshold, n_preferred=settings.n_preferred,
                                       n_nonpreferred=settings.n_nonpreferred, seed=seed,
                                       top_fraction=settings.top_fraction)
            except DataError as exc:
                raise DataError(
                    f"{path}, κ={cost_threshold:g}: PREFINE's D_p/D_np split is impossible: {exc} "
                    "(--n-preferred / --n-nonpreferred / --cost-thresholds change the split)."
                ) from None


def _reference_rows(out: Path, settings: TaskSettings, device: str) -> list[dict[str, Any]]:
    """π_ref's rows of results.csv: one per κ and seed, from the harness's reference records."""
    from retrofit.tasks import normalized_score

    rows = []
    for seed in settings.seeds:
        record = json.loads((out / "reference" / f"seed{seed}.json").read_text())
        wall = float(record["bc_wall_clock_s"])
        for cost_threshold in settings.cost_thresholds:
            norm_reward, norm_cost = normalized_score(settings.task, record["reward"],
                                                      record["cost"], cost_threshold)
            rows.append({
                "method": "reference", "task": settings.task, "cost_threshold": cost_threshold,
                "seed": seed, "normalized_reward": float(norm_reward),
                "normalized_cost": float(norm_cost), "train_wall_clock_s": wall,
                "updates": int(record["bc_steps"]),
                "updates_per_s": record["bc_steps"] / wall if wall > 0 else None,
                "time_to_safe_s": None, "peak_rss_mb": None, "device": device,
            })
    return rows


def summarize_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std over seeds per (method, κ), safety, and reward kept relative to π_ref."""
    groups: dict[tuple[str, float], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["method"], float(row["cost_threshold"]))].append(row)
    out = []
    for (method, cost_threshold), members in groups.items():
        reward = np.array([r["normalized_reward"] for r in members], dtype=np.float64)
        cost = np.array([r["normalized_cost"] for r in members], dtype=np.float64)
        ref = groups.get(("reference", cost_threshold))
        ref_reward = float(np.mean([r["normalized_reward"] for r in ref])) if ref else None
        out.append({
            "method": method, "cost_threshold": cost_threshold, "seeds": len(members),
            "reward_mean": float(reward.mean()), "reward_std": float(reward.std()),
            "cost_mean": float(cost.mean()), "cost_std": float(cost.std()),
            "safe": bool(is_safe_on_average(cost.mean())),
            "reward_kept": (float(reward.mean()) / ref_reward
                            if ref_reward is not None and ref_reward > 0 else None),
        })
    return out


def format_table(summary: Sequence[dict[str, Any]], settings: TaskSettings,
                 warnings: Sequence[DataWarning] = ()) -> str:
    """The suite's Markdown table: one row per method and κ (mean ± std over seeds), then the
    data warnings and what to do about them (:func:`retrofit.suite.checks.format_warnings`)."""
    lines = [
        "| method | κ | norm. reward | norm. cost | safe | reward kept vs π_ref |",
        "|---|---|---|---|---|---|",
    ]
    for s in summary:
        kept = "—" if s["reward_kept"] is None else f"{100 * s['reward_kept']:.0f} %"
        lines.append(
            f"| {s['method']} | {s['cost_threshold']:g} | {s['reward_mean']:.3f} ± "
            f"{s['reward_std']:.3f} | {s['cost_mean']:.3f} ± {s['cost_std']:.3f} | "
            f"{'yes' if s['safe'] else 'no'} | {kept} |"
        )
    head = (f"{settings.task}: {len(settings.seeds)} seed(s), {settings.eval_episodes} "
            f"evaluation episode(s) per policy; π_ref BC {settings.bc_steps} steps; "
            f"{settings.prefine_steps} training steps per method (PREFINE's paper: 500k).")
    block = format_warnings(warnings)
    return head + "\n\n" + "\n".join(lines) + "\n" + ("\n" + block if block else "")


def _phases(out: Path, settings: TaskSettings, methods: Sequence[str], source: DataSource,
            data: Any) -> dict[str, Any]:
    """Wall-clock per phase: collection, BC, π_ref evaluation, each method's training and
    evaluation."""
    refs = [json.loads((out / "reference" / f"seed{s}.json").read_text()) for s in settings.seeds]
    meta = getattr(data, "metadata", {}) or {}
    phases: dict[str, Any] = {
        "collection_s": source.collect_wall_clock_s,
        "collection_recorded_s": (
            {"train": meta.get("train_seconds"), "rollout": meta.get("rollout_seconds")}
            if "train_seconds" in meta else None),
        "bc_s": [r["bc_wall_clock_s"] for r in refs],
        "reference_eval_s": [r.get("eval_wall_clock_s") for r in refs],
    }
    from retrofit.compare.harness import cell_path

    for method in methods:
        cells = [json.loads(cell_path(out, method, k, s).read_text())
                 for s in settings.seeds for k in settings.cost_thresholds]
        phases[method] = {"train_s": [c["row"]["train_wall_clock_s"] for c in cells],
                          "eval_s": [c.get("eval_wall_clock_s") for c in cells]}
    return phases


def run_suite(
    settings: TaskSettings,
    out: str | Path,
    *,
    dataset: str | Path | None = None,
    data_dir: str | Path | None = None,
    collect: bool = True,
    methods: Sequence[str] = ("prefine",),
    device: str = "auto",
    threads: int = 1,
    isolate: bool = True,
    executor: str = "local",
    workers: int = 1,
    ray_address: str | None = None,
    reference_std: float | None = 0.2,
    reference_policy: str = "clipped-gaussian",
    reference_kl_weight: float | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    batched: bool = False,
) -> dict[str, Any]:
    """Run the suite for one task; write results.csv, table.md, suite.json and the harness's files.

    ``executor``/``workers``/``ray_address`` choose where the cells run, as for
    ``retrofit compare`` (docs/cluster.md); the files written are the same.
    ``reference_policy``: π_ref's family, as ``CompareConfig.reference_policy``:
    "clipped-gaussian" with spread ``reference_std`` (0.2, the default everywhere, whose
    PREFINE log-likelihoods stay bounded; docs/prefine.md), "tanh-gaussian", or "vae" (BCQ's
    VAE) with β_KL ``reference_kl_weight`` (None: BCQ's 0.5).
    ``overrides``: method name -> {config field: value}, as ``CompareConfig.overrides``
    (``retrofit suite --set``). ``batched``: PREFINE-family cells of one κ across seeds train as
    one batched run (``CompareConfig.batched``; same files).

    Returns the ``suite.json`` content (settings, data source, per-(method, κ) summary, data
    warnings, phases).
    """
    from retrofit.compare import CompareConfig, run_compare
    from retrofit.compare.harness import data_kind, write_csv
    from retrofit.data.dataset import TrajectoryDataset
    from retrofit.device import get_device
    from retrofit.methods.registry import get_method

    methods = tuple(methods)
    if not methods:
        raise ConfigError("methods is empty: name at least one, e.g. --methods prefine,bc-safe.")
    for method in methods:
        get_method(method)
        data_kind(method)
    folder = Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
    source = find_data(settings, dataset=dataset, data_dir=folder)
    if source is None:
        if not collect:
            raise DataError(f"--no-collect: no data for {settings.task} was found. "
                            + how_to_get_data(settings, folder))
        log(f"collect {settings.name}: no data found; making it with "
            f"`{settings.collection.command(settings.name, str(folder / settings.name))}`")
        source = collect_data(settings, folder, progress=progress)
    log(f"data    {source.kind}: {source.path}")
    data = TrajectoryDataset.from_hdf5(source.path)
    check_dataset(settings, data, source.path)
    warnings = dataset_warnings(settings, data, folder)
    for warning in warnings:
        log(f"WARNING {warning.message} What to do: {warning.remedy}")

    out = Path(out)
    config = CompareConfig(
        task=settings.task, methods=methods, out=out, dataset=str(source.path),
        cost_thresholds=settings.cost_thresholds, seeds=settings.seeds,
        steps=settings.prefine_steps, eval_episodes=settings.eval_episodes, checkpoint_every=0,
        bc_steps=settings.bc_steps, n_preferred=settings.n_preferred,
        n_nonpreferred=settings.n_nonpreferred, top_fraction=settings.top_fraction,
        device=device, threads=threads, isolate=isolate,
        executor=executor, workers=workers, ray_address=ray_address,
        reference_std=reference_std, reference_policy=reference_policy,
        reference_kl_weight=reference_kl_weight, progress=progress,
        overrides={m: dict(fields) for m, fields in (overrides or {}).items()},
        batched=batched,
    )
    rows = run_compare(config, log=log)
    device_name = str(get_device(device))
    all_rows = _reference_rows(out, settings, device_name) + list(rows)
    write_csv(out / "results.csv", all_rows)
    warnings += reference_warnings(settings, all_rows, data, folder)
    summary = summarize_rows(all_rows)
    table = format_table(summary, settings, warnings)
    atomic_write_text(out / "table.md", table)
    from retrofit.suite.figure import plot_suite

    plot_suite(out / "reward_cost.png", settings, data, all_rows, warnings)
    report = {
        "task": settings.task, "settings": asdict(settings), "methods": list(methods),
        "reference_std": config.reference_spread,
        **config.reference_family(),
        "data": {"kind": source.kind, "path": str(source.path), "episodes": data.n_episodes},
        "summary": summary, "warnings": [asdict(w) for w in warnings],
        "phases": _phases(out, settings, methods, source, data),
    }
    atomic_write_text(out / "suite.json", json.dumps(report, indent=2))
    log(table)
    return report


def suite_settings(task: str, **overrides: Any) -> TaskSettings:
    """``settings_for(task)`` with the non-``None`` ``overrides`` applied (CLI options)."""
    return settings_for(task).override(**overrides)
