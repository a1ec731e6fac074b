"""The ``retrofit`` command line (typer: typed options and help for free, one function each)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

MAX_SEED = 2**64 - 1
"""The largest ``--seed`` (torch's seed range; ``retrofit.device.MAX_SEED``)."""


def _seed_option(text: str) -> Any:
    """A ``--seed`` option: click refuses a value outside ``[0, MAX_SEED]`` in one line."""
    return typer.Option(help=text, min=0, max=MAX_SEED)


def _config_callback(ctx: typer.Context, param: typer.CallbackParam, value: Path | None
                     ) -> Path | None:
    """``--config FILE``: the file's values become the defaults (``retrofit.cli_settings``)."""
    from retrofit.cli_settings import load_config

    return load_config(ctx, param, value)


ConfigFile = Annotated[Path | None, typer.Option(
    "--config", is_eager=True, callback=_config_callback,
    help="YAML or JSON file of option values (docs/cli.md); options given on the command line "
         "win over it. A run's resolved_config.json reproduces it.")]
Progress = Annotated[bool, typer.Option("--progress/--quiet", help="Show progress bars "
                                        "(--quiet hides them).")]
# Its default, 0.0, is retrofit.data.splits.DEFAULT_TOP_FRACTION written out (importing the data
# package here would slow every command's start); tests/test_cli_vocabulary.py checks they agree.
TopFraction = Annotated[float, typer.Option(
    help="Share of SAFE episodes, best reward first, that D_p is drawn from: 0 = exactly the N_p "
         "best (the default, docs/protocol.md amendment 6); 0.5 = the better half (the default "
         "before; reruns earlier results).")]
ReferencePolicy = Annotated[str, typer.Option(
    help="π_ref's family: clipped-gaussian (spread --reference-std), tanh-gaussian (the default "
         "before issue 25) or vae (BCQ's VAE at PREFINE A.4's [256, 256] width; "
         "docs/protocol.md amendment 10). 'gaussian' is a deprecated spelling.")]
ReferenceStd = Annotated[float, typer.Option(
    help="The clipped Gaussian π_ref's fixed spread (half-ranges; docs/prefine.md). 0 is a "
         "deprecated spelling of --reference-policy tanh-gaussian.")]
ReferenceKLWeight = Annotated[float | None, typer.Option(
    help="β_KL of the VAE π_ref (with --reference-policy vae; default BCQ's 0.5; "
         "docs/protocol.md amendment 11).")]
NPreferred = Annotated[int, typer.Option(help="N_p of the split (PREFINE §5.1).")]
NNonpreferred = Annotated[int, typer.Option(help="N_np of the split.")]
SetOption = Annotated[list[str] | None, typer.Option(
    "--set", help="Config override FIELD=VALUE or METHOD.FIELD=VALUE (e.g. beta=0.2, "
                  "prefine.beta=0.2); repeatable.")]


def _save_config(path: Path, ctx: typer.Context, values: dict[str, Any]) -> None:
    from retrofit.cli_settings import write_resolved_config

    write_resolved_config(path, str(ctx.info_name), values)


def _reader_gone() -> typer.Exit:
    """Point stdout at devnull (so the flush at exit cannot fail again; Python's own advice for
    a broken pipe) and return the quiet exit to raise."""
    import os
    import sys

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return typer.Exit(0)


class _PipeSafeHelp:
    """``--help`` into a reader that goes away (``retrofit --help | head -1``) exits with status 0.

    Typer prints help with rich, whose console answers a broken pipe itself: it points stdout
    at devnull and raises ``SystemExit(1)`` (``rich.console.Console.on_broken_pipe``). Printing
    the help is all that happens inside ``format_help``, so a ``SystemExit`` from there is that
    answer, and becomes the same quiet exit as any other closed pipe.
    """

    def format_help(self, ctx: Any, formatter: Any) -> None:
        """Typer's (rich) help; a closed stdout ends the command with status 0."""
        try:
            super().format_help(ctx, formatter)  # type: ignore[misc]
        except SystemExit:
            raise _reader_gone() from None


class _Command(_PipeSafeHelp, TyperCommand):
    """A subcommand whose ``--help`` is pipe-safe (every ``@app.command`` takes this class)."""


class _Commands(_PipeSafeHelp, TyperGroup):
    """Typer's command group, except that a reader that goes away (``retrofit tasks | head``,
    ``retrofit --help | head``) ends the command quietly with status 0, as ``ls | head`` does,
    instead of status 1."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        """Parse the top-level options (``--help`` prints here)."""
        try:
            return super().make_context(*args, **kwargs)
        except BrokenPipeError:
            raise _reader_gone() from None

    def invoke(self, ctx: Any) -> Any:
        """Run the subcommand (its ``--help`` and its output)."""
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise _reader_gone() from None


app = typer.Typer(
    cls=_Commands,
    add_completion=False,
    no_args_is_help=True,
    help="Make pretrained RL policies safe after the fact from offline preferences.",
)


@app.command(cls=_Command)
def demo(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Folder for demo.json, the PNG and policies.")] = Path(
        "runs/demo"
    ),
    dataset: Annotated[str | None, typer.Option(help="DSRL HDF5 file (default: shipped).")] = None,
    cost_threshold: Annotated[float, typer.Option(help="κ, the episode cost limit.")] = 20.0,
    n_preferred: NPreferred = 100,
    n_nonpreferred: NNonpreferred = 20,
    top_fraction: TopFraction = 0.0,
    steps: Annotated[int, typer.Option(help="PREFINE fine-tuning steps.")] = 20_000,
    bc_steps: Annotated[int, typer.Option(help="Reference BC steps.")] = 20_000,
    episodes: Annotated[int, typer.Option(help="Evaluation episodes per policy.")] = 20,
    seed: Annotated[int, _seed_option("Seed for data split, training, evaluation.")] = 0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    threads: Annotated[int, typer.Option(help="torch CPU threads (default 1: measured, "
                                         "docs/benchmarks.md).")] = 1,
    progress: Progress = True,
    overwrite: Annotated[bool, typer.Option(help="Write over the files of a non-empty --out.")] = (
        False
    ),
    config: ConfigFile = None,
) -> None:
    """Pretrain a reference on the shipped BallCircle data, retrofit it with PREFINE, compare."""
    from retrofit.cli_settings import RESOLVED_CONFIG, resolve
    from retrofit.demo import DemoConfig, format_table, run_demo

    values = resolve(ctx)
    demo_config = DemoConfig(
        dataset=dataset, cost_threshold=cost_threshold, n_preferred=n_preferred,
        n_nonpreferred=n_nonpreferred, top_fraction=top_fraction, prefine_steps=steps,
        bc_steps=bc_steps, episodes=episodes, seed=seed, device=device, threads=threads,
        progress=progress,
    )
    report = run_demo(demo_config, out, overwrite=overwrite)
    _save_config(out / RESOLVED_CONFIG, ctx, values)
    typer.echo(format_table(report))
    typer.echo(f"wrote {out / 'demo.json'} and {out / 'reward_cost.png'}")


def _floats(text: str, option: str) -> tuple[float, ...]:
    return _csv_list(text, float, option) or ()


def _cost_thresholds(ctx: typer.Context, values: dict[str, Any]) -> tuple[float, ...] | None:
    """``--cost-thresholds`` (or its old spelling ``--thresholds``, named in its errors)."""
    from retrofit.cli_settings import given

    option = "--thresholds" if given(ctx, "thresholds") else "--cost-thresholds"
    return _csv_list(values["cost_thresholds"], float, option)


@app.command(cls=_Command)
def collect(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="DSRL task, e.g. BallRun or OfflineBallRun-v0.")],
    out: Annotated[
        Path, typer.Option(help="Output .hdf5 file, or a folder for a DSRL-style file name.")
    ],
    collect_episodes: Annotated[int, typer.Option(help="Trajectories to collect.")] = 1000,
    train_steps: Annotated[int, typer.Option(help="PPO steps per behaviour run.")] = 60_000,
    penalties: Annotated[str, typer.Option(help="Cost penalties k of r − k·s·c.")] = (
        "0,0.25,0.5,1,2"
    ),
    budgets: Annotated[
        str, typer.Option(help="PPO-Lagrangian budgets as fractions of the largest κ ('' = none).")
    ] = "0.25,0.5,1,1.5",
    noise_levels: Annotated[str, typer.Option(help="Gaussian action-noise scales.")] = "0,0.15,0.4",
    cache_dir: Annotated[Path | None, typer.Option(
        help="Reuse trained snapshots and rollouts here (default: a folder beside --out, "
             "removed when the file is written; a killed collection resumes from it).")] = None,
    seed: Annotated[int, _seed_option("Seed.")] = 0,
    progress: Progress = True,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
    workers: Annotated[int, typer.Option(help="Behaviour runs trained at once, each in its own "
                                         "process (same dataset).")] = 1,
    config: ConfigFile = None,
    episodes: Annotated[int | None, typer.Option(
        hidden=True, help="Deprecated spelling of --collect-episodes.")] = None,
) -> None:
    """Make a DSRL-format dataset in the real environment (PPO on r − k·c, several k and noises)."""
    from retrofit.cli_settings import RESOLVED_CONFIG, resolve
    from retrofit.collect import collect_dataset
    from retrofit.collect.collector import dsrl_filename

    values = resolve(ctx, {"episodes": "collect_episodes"})
    floats = {name: _floats(text, f"--{name.replace('_', '-')}") for name, text in
              (("penalties", penalties), ("budgets", budgets), ("noise_levels", noise_levels))}
    data = collect_dataset(
        task, out, values["collect_episodes"], train_steps=train_steps, seed=seed,
        progress=progress, cache_dir=cache_dir, overwrite=overwrite, workers=workers, **floats,
    )
    path = out / dsrl_filename(data) if out.is_dir() or not out.suffix else out
    _save_config(path.with_name(f"{path.name}.{RESOLVED_CONFIG}"), ctx, values)
    typer.echo(f"wrote {path}: {data.n_episodes} episodes, {len(data)} transitions")


@app.command(cls=_Command)
def tasks() -> None:
    """List the DSRL tasks: constants, cost thresholds and `retrofit suite` settings."""
    from retrofit.suite.settings import SETTINGS
    from retrofit.tasks import TASKS

    for info in TASKS.values():
        cost_thresholds = "/".join(f"{k:g}" for k in info.cost_thresholds)
        typer.echo(
            f"{info.env_id:42s} steps={info.max_episode_steps:<5d} R=[{info.min_reward:g}, "
            f"{info.max_reward:g}] C_max={info.max_cost:g} κ={cost_thresholds}"
        )
        typer.echo(f"    {SETTINGS[info.env_id].name}: {SETTINGS[info.env_id].summary()}")


def _csv_list(text: str | None, cast: type, option: str) -> tuple | None:
    """Comma-separated values of ``option``; a value ``cast`` refuses is a ConfigError."""
    from retrofit.errors import ConfigError

    if text is None or not text.strip():
        return None
    values = []
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        try:
            values.append(cast(item))
        except ValueError:
            kind = "integers" if cast is int else "numbers"
            raise ConfigError(
                f"{option} {text!r}: {item!r} is not a number; give comma-separated {kind}, "
                "e.g. 10,20,40."
            ) from None
    return tuple(values)


@app.command(cls=_Command)
def compare(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="DSRL task, e.g. BallRun.")],
    methods: Annotated[str, typer.Option(help="Comma-separated registered methods.")] = (
        "prefine,presa,cpq,safedice,bc-all,bc-safe,ppl,dpo"
    ),
    out: Annotated[Path, typer.Option(help="Output folder (finished cells are reused).")] = Path(
        "runs/compare"
    ),
    dataset: Annotated[str | None, typer.Option(
        help="DSRL HDF5 (default: the file shipped for TASK; 'dsrl': DSRL's own file, "
             "downloaded if needed)."
    )] = None,
    cost_thresholds: Annotated[str | None, typer.Option(
        help="κ values, e.g. 10,20,40 (default: the task's set).")] = None,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0",
    steps: Annotated[int, typer.Option(help="Training iterations of every method.")] = 2_000,
    batch_size: Annotated[int | None, typer.Option(help="Batch size for every method "
                                                   "(default: each method's own).")] = None,
    episodes: Annotated[int, typer.Option(help="Final evaluation episodes per cell.")] = 20,
    checkpoint_every: Annotated[int | None, typer.Option(
        help="Steps between off-the-clock checkpoint evaluations (default steps/10; 0: none)."
    )] = None,
    checkpoint_episodes: Annotated[int, typer.Option(help="Episodes per checkpoint.")] = 5,
    safe_reward_fraction: Annotated[float, typer.Option(
        help="A checkpoint is 'safe' when cost ≤ 1 and reward ≥ this × π_ref's."
    )] = 0.8,
    bc_steps: Annotated[int, typer.Option(help="Reference BC steps.")] = 20_000,
    reference_std: ReferenceStd = 0.2,
    reference_policy: ReferencePolicy = "clipped-gaussian",
    reference_kl_weight: ReferenceKLWeight = None,
    n_preferred: NPreferred = 100,
    n_nonpreferred: NNonpreferred = 20,
    top_fraction: TopFraction = 0.0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    threads: Annotated[int, typer.Option(help="torch CPU threads per cell.")] = 1,
    in_process: Annotated[bool, typer.Option(help="Run cells in this process (peak RSS is then "
                                             "the whole run's).")] = False,
    batched: Annotated[bool, typer.Option(help="Train a PREFINE-family method's cells of one κ "
                                          "across seeds as one batched run.")] = False,
    executor: Annotated[str, typer.Option(help="local (this machine) or ray (a Ray cluster; "
                                          "docs/cluster.md).")] = "local",
    workers: Annotated[int, typer.Option(help="Cells at once with the local executor.")] = 1,
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster address ('auto' after "
                                                    "`ray start`; default: a local Ray).")] = None,
    set_: SetOption = None,
    progress: Progress = True,
    config: ConfigFile = None,
    thresholds: Annotated[str | None, typer.Option(
        hidden=True, help="Deprecated spelling of --cost-thresholds.")] = None,
) -> None:
    """Train every method on the same data and iterations; time, evaluate, write CSV/MD/PNGs.

    An existing --out with other methods, κ values or seeds gains their cells (one results
    table); another dataset or other settings in the same --out is refused.
    """
    from retrofit.cli_settings import RESOLVED_CONFIG, harness_overrides, resolve
    from retrofit.compare import CompareConfig, run_compare

    values = resolve(ctx, {"thresholds": "cost_thresholds"})
    names = _csv_list(methods, str, "--methods") or ()
    compare_config = CompareConfig(
        task=task, methods=names, out=out, dataset=dataset,
        cost_thresholds=_cost_thresholds(ctx, values),
        seeds=_csv_list(seeds, int, "--seeds") or (0,),
        steps=steps, batch_size=batch_size, eval_episodes=episodes,
        checkpoint_every=checkpoint_every, checkpoint_episodes=checkpoint_episodes,
        safe_reward_fraction=safe_reward_fraction, bc_steps=bc_steps,
        n_preferred=n_preferred, n_nonpreferred=n_nonpreferred, top_fraction=top_fraction,
        reference_std=reference_std or None, reference_policy=reference_policy,
        reference_kl_weight=reference_kl_weight, device=device,
        threads=threads, isolate=not in_process, executor=executor, workers=workers,
        ray_address=ray_address, overrides=harness_overrides(values["set"], names),
        progress=progress, batched=batched,
    )
    run_compare(compare_config, log=typer.echo)
    _save_config(out / RESOLVED_CONFIG, ctx, values)
    typer.echo((out / "results.md").read_text())
    typer.echo(f"wrote {out / 'results.csv'}, {out / 'results.md'}, {out / 'reward_cost.png'}, "
               f"{out / 'safe_fraction.png'}")


@app.command(cls=_Command)
def feedback(
    dataset: Annotated[Path, typer.Argument(help="DSRL-format HDF5 trajectory dataset.")],
    out: Annotated[Path, typer.Option(help="Output feedback .h5 file.")],
    task: Annotated[str | None, typer.Option(help="DSRL task of the data (default: the "
                                             "file's env_id attribute).")] = None,
    pairs: Annotated[int, typer.Option(help="Segment pairs (paper: 10,000).")] = 10_000,
    segment_length: Annotated[int, typer.Option(help="Steps per segment (paper: 64).")] = 64,
    cost_threshold: Annotated[float, typer.Option(help="Episode cost limit κ.")] = 20.0,
    label_noise: Annotated[float, typer.Option(help="Fraction of safety labels flipped.")] = 0.0,
    seed: Annotated[int, _seed_option("Seed of every random draw.")] = 0,
    link_dataset: Annotated[bool, typer.Option(help="Refer to DATASET by path and fingerprint "
                                               "instead of embedding a copy.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """Synthesize PreSa segment-pair feedback (reward preference + safety labels) from data."""
    import json

    from retrofit import feedback as feedback_module
    from retrofit.data.dataset import TrajectoryDataset
    from retrofit.outputs import check_output_file

    check_output_file(out, overwrite)

    data = TrajectoryDataset.from_hdf5(dataset, task=task)
    fb = feedback_module.synthesize(
        data, n_pairs=pairs, segment_length=segment_length, cost_threshold=cost_threshold,
        seed=seed, label_noise=label_noise,
    )
    feedback_module.save(fb, out, embed_dataset=not link_dataset, dataset_path=dataset.resolve())
    typer.echo(json.dumps(fb.summary(), indent=2))
    typer.echo(f"wrote {out}")


@app.command(cls=_Command)
def fit(
    ctx: typer.Context,
    policy: Annotated[Path, typer.Argument(help="Policy file: retrofit .pt, stable-baselines3 "
                                           ".zip (with --algo) or d3rlpy .d3.")],
    data: Annotated[Path, typer.Argument(help="DSRL-format HDF5 dataset, or a feedback .h5 "
                                         "(retrofit feedback) for PreSa-style methods.")],
    out: Annotated[Path, typer.Option(help="Output policy file, same format as POLICY.")],
    method: Annotated[str, typer.Option(help="A registered method (retrofit methods).")] = (
        "prefine"
    ),
    cost_threshold: Annotated[float | None, typer.Option(
        help="κ, the episode cost threshold (default for feedback files: theirs).")] = None,
    algo: Annotated[str | None, typer.Option(help="SB3 algorithm of a .zip: PPO, A2C, SAC, "
                                             "TD3, DDPG.")] = None,
    steps: Annotated[int | None, typer.Option(help="Training steps (default: the method's "
                                              "config).")] = None,
    n_preferred: NPreferred = 100,
    n_nonpreferred: NNonpreferred = 20,
    top_fraction: TopFraction = 0.0,
    episodes: Annotated[int, typer.Option(help="Evaluate before/after over this many episodes "
                                          "in the real environment (0: skip).")] = 0,
    report_dir: Annotated[Path | None, typer.Option(help="Report, metrics and checkpoints "
                                                    "(default: OUT's name + _fit).")] = None,
    log: Annotated[str, typer.Option(help="Metrics format: csv, tensorboard or wandb (extra "
                                     "retrofit-rl[wandb]).")] = "csv",
    checkpoint_every: Annotated[int, typer.Option(help="Steps between checkpoints.")] = 10_000,
    select_every: Annotated[int, typer.Option(
        help="Experimental: keep the policy every N steps and write the copy the offline cost "
             "estimate selects (best estimated reward among those estimated within κ; "
             "safety_report.md in the report folder; docs/offline-estimate.md). 0: the last "
             "step's policy.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue the interrupted fit in the report "
                                         "folder.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace OUT and an earlier report.")] = False,
    set_: SetOption = None,
    seed: Annotated[int, _seed_option("Training and evaluation seed.")] = 0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    threads: Annotated[int, typer.Option(help="torch CPU threads (default 1: measured, "
                                         "docs/benchmarks.md).")] = 1,
    progress: Progress = True,
    config: ConfigFile = None,
) -> None:
    """Retrofit a policy file with any registered method; write it back in its own format."""
    from retrofit.cli_settings import method_overrides, resolve
    from retrofit.fit_command import FitRequest

    values = resolve(ctx)
    request = FitRequest(
        policy=policy, data=data, out=out, method=method, cost_threshold=cost_threshold,
        algo=algo, steps=steps, n_preferred=n_preferred, n_nonpreferred=n_nonpreferred,
        top_fraction=top_fraction, episodes=episodes, report_dir=report_dir, log=log,
        checkpoint_every=checkpoint_every,
        select_every=select_every, resume=resume, overwrite=overwrite,
        overrides=method_overrides(values["set"], method),
        seed=seed, device=device, threads=threads, progress=progress,
    )
    _run_and_print(request, ctx, values)


def _run_and_print(request: Any, ctx: typer.Context, values: dict[str, Any]) -> None:
    from retrofit.cli_settings import RESOLVED_CONFIG
    from retrofit.fit_command import run_fit

    report = run_fit(request)
    _save_config(request.report_folder / RESOLVED_CONFIG, ctx, values)
    typer.echo(f"wrote {request.out} ({report['steps']} steps, "
               f"{report['train_wall_clock_s']:.0f} s); report in {request.report_folder}")
    for name in ("reference", "retrofitted"):
        if name in report:
            r = report[name]
            typer.echo(f"{name}: normalized reward {r['normalized_reward']:.3f}, normalized cost "
                       f"{r['normalized_cost']:.3f} ({'safe' if r['safe'] else 'unsafe'})")


@app.command(cls=_Command)
def methods() -> None:
    """List the registered methods, what each learns from, and its summary."""
    from retrofit.methods.registry import available_methods, get_method

    for name in available_methods():
        spec = get_method(name)
        typer.echo(f"{name:20s} {spec.data_kind:12s} {spec.summary}")


@app.command(cls=_Command)
def presa(
    ctx: typer.Context,
    policy: Annotated[Path, typer.Argument(help="Reference policy file (retrofit save_policy).")],
    feedback_file: Annotated[Path, typer.Argument(metavar="FEEDBACK",
                                                  help="Feedback .h5 (retrofit feedback).")],
    out: Annotated[Path, typer.Option(help="Output policy file.")],
    method: Annotated[str, typer.Option(help="presa or a variant (retrofit methods lists those "
                                        "whose data is feedback).")] = "presa",
    steps: Annotated[int | None, typer.Option(help="Alignment steps (default: the domain's "
                                              "Table 4 preset).")] = None,
    episodes: Annotated[int, typer.Option(help="Evaluate before and after in the real "
                                          "environment over this many episodes (0: skip).")] = 0,
    cost_threshold: Annotated[float | None, typer.Option(help="κ of the evaluation (default: "
                                                      "the feedback's).")] = None,
    report_dir: Annotated[Path | None, typer.Option(help="Report folder: config.json, per-step "
                                                    "metrics.csv (ν, constraint, ...).")] = None,
    set_: SetOption = None,
    seed: Annotated[int, _seed_option("Training and evaluation seed.")] = 0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    threads: Annotated[int, typer.Option(help="torch CPU threads (default 1: measured, "
                                         "docs/benchmarks.md).")] = 1,
    progress: Progress = True,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file and write "
                                            "into a non-empty --report-dir.")] = False,
    config: ConfigFile = None,
    log_dir: Annotated[Path | None, typer.Option(
        hidden=True, help="Deprecated spelling of --report-dir.")] = None,
) -> None:
    """Alias of ``retrofit fit --method presa`` for feedback files (kept for old scripts)."""
    from retrofit.cli_settings import given, method_overrides, resolve
    from retrofit.methods.registry import available_methods

    values = resolve(ctx, {"log_dir": "report_dir"})
    if method not in available_methods("feedback"):
        raise typer.BadParameter(
            f"--method {method!r}: use one of {', '.join(available_methods('feedback'))}.")
    report_option = "--log-dir" if given(ctx, "log_dir") else "--report-dir"
    from retrofit.fit_command import FitRequest

    _run_and_print(FitRequest(
        policy=policy, data=feedback_file, out=out, method=method, cost_threshold=cost_threshold,
        steps=steps, episodes=episodes, report_dir=values["report_dir"], overwrite=overwrite,
        overrides=method_overrides(values["set"], method), seed=seed, device=device,
        threads=threads, progress=progress, report_option=report_option,
    ), ctx, values)


@app.command("export", cls=_Command)
def export_cmd(
    policy: Annotated[
        Path, typer.Argument(help="retrofit .pt, stable-baselines3 .zip or d3rlpy .d3 file.")
    ],
    out: Annotated[Path, typer.Option(help="Output file (.pt/.pth/.ts for TorchScript, .onnx).")],
    format: Annotated[
        str | None, typer.Option(help="torchscript | onnx (default: onnx for a .onnx --out).")
    ] = None,
    algo: Annotated[
        str | None, typer.Option(help="SB3 class of a .zip: ppo, a2c, sac, td3, ddpg.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """Export a policy's deterministic action (normalisation and bounds inside) for deployment."""
    from retrofit.export import check_export_paths, export_policy, load_for_export

    format = check_export_paths(policy, out, format, overwrite)
    path = export_policy(load_for_export(policy, algo), out, format)
    typer.echo(f"wrote {path}: raw observations in, deterministic actions out")


@app.command(cls=_Command)
def suite(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="DSRL task, e.g. CarRun (`retrofit tasks` lists "
                                        "them with their settings).")],
    out: Annotated[Path | None, typer.Option(help="Output folder (default runs/suite/TASK); "
                                             "finished cells in it are reused.")] = None,
    dataset: Annotated[Path | None, typer.Option(help="DSRL-format HDF5 file to use.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Where collected files are looked up "
                                                  "and made (default runs/suite/data).")] = None,
    collect: Annotated[bool, typer.Option(help="Collect the data when none is found.")] = True,
    methods: Annotated[str, typer.Option(help="Comma-separated methods, e.g. prefine,bc-safe.")
                       ] = "prefine",
    cost_thresholds: Annotated[str | None, typer.Option(help="κ values (default: the task's).")
                               ] = None,
    seeds: Annotated[str | None, typer.Option(help="Seeds (default: the settings', 0,1,2).")
                     ] = None,
    bc_steps: Annotated[int | None, typer.Option(help="π_ref BC steps.")] = None,
    reference_std: ReferenceStd = 0.2,
    reference_policy: ReferencePolicy = "clipped-gaussian",
    reference_kl_weight: ReferenceKLWeight = None,
    steps: Annotated[int | None, typer.Option(help="Training steps of every method.")] = None,
    episodes: Annotated[int | None, typer.Option(help="Evaluation episodes per policy.")] = None,
    n_preferred: Annotated[int | None, typer.Option(help="N_p of the split.")] = None,
    n_nonpreferred: Annotated[int | None, typer.Option(help="N_np of the split.")] = None,
    top_fraction: TopFraction = 0.0,
    collect_episodes: Annotated[int | None, typer.Option(help="Episodes to collect.")] = None,
    train_steps: Annotated[int | None, typer.Option(help="PPO steps per behaviour run.")] = None,
    penalties: Annotated[str | None, typer.Option(help="Collection penalties k.")] = None,
    budgets: Annotated[str | None, typer.Option(help="Collection budgets ('' = none).")] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    threads: Annotated[int, typer.Option(help="torch CPU threads per cell.")] = 1,
    in_process: Annotated[bool, typer.Option(help="Run cells in this process.")] = False,
    batched: Annotated[bool, typer.Option(help="Train a PREFINE-family method's cells of one κ "
                                          "across seeds as one batched run.")] = False,
    executor: Annotated[str, typer.Option(help="local (this machine) or ray (a Ray cluster; "
                                          "docs/cluster.md).")] = "local",
    workers: Annotated[int, typer.Option(help="Cells at once with the local executor.")] = 1,
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster address ('auto' after "
                                                    "`ray start`; default: a local Ray).")
                           ] = None,
    set_: SetOption = None,
    progress: Progress = True,
    config: ConfigFile = None,
    thresholds: Annotated[str | None, typer.Option(
        hidden=True, help="Deprecated spelling of --cost-thresholds.")] = None,
) -> None:
    """Any DSRL task end to end: data (DSRL's, shipped or collected), π_ref, PREFINE, table."""
    from retrofit.cli_settings import RESOLVED_CONFIG, harness_overrides, resolve
    from retrofit.suite.runner import run_suite, suite_settings

    values = resolve(ctx, {"thresholds": "cost_thresholds"})
    names = _csv_list(methods, str, "--methods") or ()
    settings = suite_settings(
        task, cost_thresholds=_cost_thresholds(ctx, values),
        seeds=_csv_list(seeds, int, "--seeds"),
        bc_steps=bc_steps, prefine_steps=steps, eval_episodes=episodes,
        n_preferred=n_preferred, n_nonpreferred=n_nonpreferred, top_fraction=top_fraction,
        episodes=collect_episodes,
        train_steps=train_steps,
        penalties=None if penalties is None else _floats(penalties, "--penalties"),
        budgets=None if budgets is None else _floats(budgets, "--budgets"),
    )
    out = out or Path("runs/suite") / settings.name
    run_suite(settings, out, dataset=dataset, data_dir=data_dir, collect=collect,
              methods=names, device=device, threads=threads, isolate=not in_process,
              executor=executor, workers=workers, ray_address=ray_address,
              reference_std=reference_std or None, reference_policy=reference_policy,
              reference_kl_weight=reference_kl_weight, progress=progress, log=typer.echo,
              overrides=harness_overrides(values["set"], names), batched=batched)
    _save_config(out / RESOLVED_CONFIG, ctx, {**values, "out": out})
    typer.echo(f"wrote {out / 'results.csv'}, {out / 'table.md'}, {out / 'reward_cost.png'}, "
               f"{out / 'suite.json'}")


def main() -> None:
    """Entry point of the ``retrofit`` console script.

    Every user error is one ``error:`` line on stderr and exit status 2, instead of a traceback
    or a usage box: retrofit's own errors (bad data, policy, option) and click's usage errors
    (a missing option, ``--episodes abc``). Anything else is a bug and keeps its traceback.
    ``retrofit`` alone still prints the help.
    """
    try:  # typer 0.2x ships its own copy of click; its exceptions are those, not click's
        from typer._click import exceptions as click
    except ImportError:  # pragma: no cover - older typer uses click itself
        from click import exceptions as click  # type: ignore[no-redef]

    from retrofit.errors import RetrofitError

    try:
        code = app(standalone_mode=False)
    except RetrofitError as exc:
        typer.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        raise SystemExit(2) from None
    except click.NoArgsIsHelpError as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "retrofit"
        message = " ".join(exc.format_message().split())
        typer.echo(f"error: {message} (see `{where} --help`)", err=True)
        raise SystemExit(2) from None
    except click.ClickException as exc:
        typer.echo(f"error: {' '.join(exc.format_message().split())}", err=True)
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        typer.echo("Aborted!", err=True)
        raise SystemExit(1) from None
    if isinstance(code, int) and code:  # click's Exit (e.g. Ctrl-C: 130) comes back as a code
        raise SystemExit(code)
