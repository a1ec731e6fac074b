"""``retrofit fit``: retrofit a policy file on a data file with any registered method, from the
shell, and write the result in the input's own format plus a short report.

What the data file must be depends on the method's ``data_kind``: a DSRL-format dataset for
``pairs`` methods (split into D_p / D_np at κ, PREFINE §5.1) and ``transitions`` methods (all
of it); for ``feedback`` methods a feedback file (``retrofit feedback``), or a DSRL dataset from
which segment feedback is synthesised at κ. Everything is checked before training starts; the
report folder is locked for the whole run (a second run into it is refused, naming the first),
and ``OUT`` is checked again before it is written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrofit.atomic import atomic_write_text
from retrofit.data.splits import DEFAULT_TOP_FRACTION, check_top_fraction
from retrofit.device import set_threads
from retrofit.errors import ConfigError, DataError
from retrofit.thresholds import check_cost_threshold, is_safe_on_average


@dataclass(frozen=True)
class FitRequest:
    """One ``retrofit fit`` call (the command's options, checked by :func:`check_request`)."""

    policy: Path
    data: Path
    out: Path
    method: str = "prefine"
    cost_threshold: float | None = None
    algo: str | None = None
    steps: int | None = None
    n_preferred: int = 100
    n_nonpreferred: int = 20
    top_fraction: float = DEFAULT_TOP_FRACTION
    episodes: int = 0
    report_dir: Path | None = None
    log: str = "csv"
    checkpoint_every: int = 10_000
    select_every: int = 0
    resume: bool = False
    overwrite: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)
    report_option: str = "--report-dir"
    seed: int = 0
    device: str = "auto"
    threads: int = 1
    progress: bool = True

    @property
    def report_folder(self) -> Path:
        """Where the report, metrics and checkpoints go (default: ``OUT`` minus suffix + _fit)."""
        return self.report_dir or self.out.with_name(self.out.stem + "_fit")


OPTION_FIELDS = (("cost_threshold", "--cost-threshold"), ("steps", "--steps"))
"""Config fields that have their own option: ``--set`` must not give them a second value."""


def check_single_sources(request: FitRequest) -> None:
    """Refuse a setting given both by its own option and by ``--set`` (one would win silently),
    and ``--set cost_threshold`` alone (κ also picks the data split: use ``--cost-threshold``)."""
    for name, option in OPTION_FIELDS:
        if name not in request.overrides:
            continue
        value = getattr(request, name)
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        if value is not None:
            raise ConfigError(
                f"{name} is given twice: {option} {shown} and --set {name}="
                f"{request.overrides[name]}; give it once, with {option}."
            )
        if name == "cost_threshold":
            raise ConfigError(
                f"--set cost_threshold={request.overrides[name]}: κ also selects the data split "
                f"and the report's threshold; pass --cost-threshold "
                f"{request.overrides[name]} instead."
            )


def check_request(request: FitRequest) -> None:
    """Refuse a call that would fail late or destroy earlier outputs, before any training."""
    from retrofit.outputs import (
        LOCK_NAME,
        check_output_file,
        check_output_free,
        check_unlocked,
        check_writable,
    )
    from retrofit.policy_files import policy_format

    if policy_format(request.out) != policy_format(request.policy):
        raise ConfigError(
            f"--out {request.out} must have the input policy's suffix "
            f"({request.policy.suffix}): the result is written in the input's own format."
        )
    if not request.data.is_file():
        raise DataError(f"data file {request.data} does not exist.")
    if request.cost_threshold is not None:
        check_cost_threshold(request.cost_threshold, "--cost-threshold")
    if request.episodes < 0:
        raise ConfigError(f"--episodes {request.episodes} must be >= 0.")
    check_top_fraction(request.top_fraction)
    if request.select_every < 0:
        raise ConfigError(f"--select-every {request.select_every} must be >= 0 (0: keep the "
                          "last step's policy).")
    check_single_sources(request)
    folder = request.report_folder
    keep = request.overwrite or request.resume
    check_output_file(request.out, keep)
    check_unlocked(folder)
    check_output_free(folder, keep, option=request.report_option, ignore=(LOCK_NAME,))
    check_writable(request.out.parent)
    check_writable(folder, option=request.report_option)


def load_training_data(request: FitRequest, data_kind: str) -> tuple[tuple[Any, ...], Any, float]:
    """``(fit arguments, dataset for plots or None, κ)`` for the method's data kind."""
    from retrofit import feedback as feedback_module
    from retrofit.data.dataset import TrajectoryDataset

    if data_kind == "feedback" and feedback_module.is_feedback_file(request.data):
        fb = feedback_module.load(request.data)
        cost_threshold = (request.cost_threshold if request.cost_threshold is not None
                          else fb.cost_threshold)
        if cost_threshold is None:
            raise ConfigError("this feedback file records no κ: pass --cost-threshold.")
        return (fb,), fb.dataset, float(cost_threshold)
    dataset = TrajectoryDataset.from_hdf5(request.data)
    if request.cost_threshold is None:
        raise ConfigError("--cost-threshold K is required: the episode cost threshold κ.")
    cost_threshold = float(request.cost_threshold)
    if data_kind == "feedback":
        fb = feedback_module.synthesize(dataset, cost_threshold=cost_threshold, seed=request.seed)
        return (fb,), dataset, cost_threshold
    if data_kind == "transitions":
        return (dataset,), dataset, cost_threshold
    preferred, nonpreferred = dataset.split_preferences(
        cost_threshold=cost_threshold, n_preferred=request.n_preferred,
        n_nonpreferred=request.n_nonpreferred, seed=request.seed,
        top_fraction=request.top_fraction,
    )
    return (preferred, nonpreferred), dataset, cost_threshold


def run_fit(request: FitRequest) -> dict[str, Any]:
    """Check, load, train, save, evaluate (``episodes`` > 0) and report; return the report."""
    from retrofit import Retrofitter
    from retrofit.methods.registry import get_method
    from retrofit.policy_files import load_policy_file, save_policy_file

    spec = get_method(request.method)
    check_request(request)
    set_threads(request.threads)
    policy = load_policy_file(request.policy, request.algo)
    data, dataset, cost_threshold = load_training_data(request, spec.data_kind)
    task = getattr(dataset, "task", None)
    if request.episodes and not task:  # evaluation needs the task's simulator: say so now
        raise DataError(
            f"--episodes {request.episodes} needs the data's task, and {request.data} records "
            "none (the HDF5 file's env_id or retrofit_task attribute): add it, or pass "
            "--episodes 0 and evaluate later with retrofit.evaluate(policy, TASK, ...)."
        )
    hyper = dict(request.overrides)
    if "cost_threshold" in {f for f in spec.config.__dataclass_fields__}:
        hyper.setdefault("cost_threshold", cost_threshold)
    folder = request.report_folder
    retrofitter = Retrofitter(
        policy, request.method, device=request.device, seed=request.seed,
        progress=request.progress, log_dir=folder, log=request.log,  # type: ignore[arg-type]
        checkpoint_every=request.checkpoint_every, overwrite=request.overwrite, **hyper,
    )
    selection = None
    if request.select_every:
        from retrofit.estimate import CheckpointSelection

        if dataset is None or getattr(dataset, "costs", None) is None:
            raise DataError(
                f"--select-every needs per-step costs to estimate each kept policy's cost, and "
                f"{request.data} has none (a feedback file without its dataset): pass the DSRL "
                "dataset itself, or --select-every 0."
            )
        selection = CheckpointSelection(dataset, cost_threshold, every=request.select_every)
    with locked_folder(folder):
        result = retrofitter.fit(*data, steps=request.steps, resume=request.resume,
                                 select_checkpoint=selection)
        check_out_still_free(request)
        save_policy_file(result, request.out)
        return _report(request, retrofitter, policy, result, dataset, task,
                       cost_threshold)


@contextmanager
def locked_folder(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s lock (``retrofit.outputs.folder_lock``) for the block; a folder made
    only for the lock is removed again when the block fails before writing into it."""
    from retrofit.outputs import folder_lock

    created = not folder.exists()
    try:
        with folder_lock(folder, "retrofit fit"):
            yield
    except BaseException:
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        raise


def check_out_still_free(request: FitRequest) -> None:
    """Before the final write: refuse an ``OUT`` that another process created during training."""
    if request.overwrite or request.resume or not request.out.exists():
        return
    folder = request.report_folder
    raise ConfigError(
        f"--out={str(request.out)!r} appeared while this run trained (another process wrote it) "
        f"and was not replaced; the trained state is in {folder}: write it elsewhere with the "
        f"same command plus --resume --report-dir {folder} --out ANOTHER_FILE."
    )


def _report(request: FitRequest, retrofitter: Any, policy: Any, result: Any, dataset: Any,
            task: str | None, cost_threshold: float) -> dict[str, Any]:
    """Evaluate (``episodes`` > 0), plot, and write ``report.json`` / ``report.md``."""
    folder = request.report_folder
    assert retrofitter.trainer is not None
    report: dict[str, Any] = {
        "method": request.method, "policy": str(request.policy), "data": str(request.data),
        "out": str(request.out), "task": task, "cost_threshold": cost_threshold,
        "steps": retrofitter.trainer.steps_done,
        "train_wall_clock_s": round(retrofitter.train_wall_clock_s, 3),
        "threads": request.threads,  # results depend on it (README, "Reproducing numbers")
    }
    selected = getattr(retrofitter, "safety_report_", None)
    if selected is not None:
        report["selected_checkpoint"] = {
            "name": selected.selection.name, "within_limit": selected.selection.within_limit,
            "reason": selected.selection.reason, "safety_report": "safety_report.md"}
    if request.episodes:
        report.update(_evaluate(policy, result, task, cost_threshold, request, dataset,
                                folder))
    # the curves from metrics.csv or the event files; a W&B run shows its own curves
    source = {"csv": folder / "metrics.csv", "tensorboard": folder}.get(request.log)
    if retrofitter.trainer.steps_done and source is not None and (
            source.is_dir() or source.stat().st_size > 0):
        from retrofit.plotting import plot_training_metrics

        plot_training_metrics(folder / "learning_curves.png", source,
                              title=f"{request.method} on {task or request.data.name}")
        report["learning_curves"] = "learning_curves.png"
    atomic_write_text(folder / "report.json", json.dumps(report, indent=2))
    atomic_write_text(folder / "report.md", format_report(report))
    return report


def _evaluate(before: Any, after: Any, task: str | None, cost_threshold: float,
              request: FitRequest, dataset: Any, folder: Path) -> dict[str, Any]:
    from retrofit.evaluation import evaluate
    from retrofit.plotting import plot_reward_cost

    assert task, "run_fit checks the task before training"
    results = {name: evaluate(pol, task, cost_threshold, episodes=request.episodes,
                              seed=request.seed)
               for name, pol in (("reference", before), ("retrofitted", after))}
    plot_reward_cost(folder / "reward_cost.png", dataset.episode_returns(), results,
                     cost_threshold, title=f"{request.method} on {task}, κ={cost_threshold:g}")
    return {"reward_cost": "reward_cost.png", "episodes": request.episodes, **{
        name: {"normalized_reward": r.normalized_reward, "normalized_cost": r.normalized_cost,
               "reward": r.reward, "cost": r.cost,
               "safe": bool(is_safe_on_average(r.normalized_cost))}
        for name, r in results.items()}}


def format_report(report: dict[str, Any]) -> str:
    """The report as Markdown: what ran, and the before/after table when evaluated."""
    lines = [f"# retrofit fit: {report['method']}", "",
             f"- policy `{report['policy']}` → `{report['out']}`",
             f"- data `{report['data']}` (task {report['task']}, κ = {report['cost_threshold']:g})",
             f"- {report['steps']} steps, {report['train_wall_clock_s']:.1f} s of training", ""]
    if "selected_checkpoint" in report:
        chosen = report["selected_checkpoint"]
        lines += [f"Returned policy: **{chosen['name']}**, chosen by the offline estimate "
                  f"(experimental): {chosen['reason']} See "
                  f"[{chosen['safety_report']}]({chosen['safety_report']}).", ""]
    if "reference" in report:
        lines += ["| policy | reward | cost | norm. reward | norm. cost | safe |",
                  "|---|---|---|---|---|---|"]
        for name in ("reference", "retrofitted"):
            r = report[name]
            lines.append(f"| {name} | {r['reward']:.1f} | {r['cost']:.2f} | "
                         f"{r['normalized_reward']:.3f} | {r['normalized_cost']:.3f} | "
                         f"{'yes' if r['safe'] else 'no'} |")
        lines += ["", f"![reward–cost]({report['reward_cost']})", ""]
    if "learning_curves" in report:
        lines += [f"![learning curves]({report['learning_curves']})", ""]
    return "\n".join(lines)
