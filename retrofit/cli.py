"""The ``retrofit`` command line (typer: typed options and help for free, one function each)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Make pretrained RL policies safe after the fact from offline preferences.",
)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for demo.json, the PNG and policies.")] = Path(
        "runs/demo"
    ),
    dataset: Annotated[str | None, typer.Option(help="DSRL HDF5 file (default: shipped).")] = None,
    cost_threshold: Annotated[float, typer.Option(help="κ, the episode cost limit.")] = 20.0,
    steps: Annotated[int, typer.Option(help="PREFINE fine-tuning steps.")] = 20_000,
    bc_steps: Annotated[int, typer.Option(help="Reference BC steps.")] = 20_000,
    episodes: Annotated[int, typer.Option(help="Evaluation episodes per policy.")] = 20,
    seed: Annotated[int, typer.Option(help="Seed for data split, training, evaluation.")] = 0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    quiet: Annotated[bool, typer.Option(help="Hide progress bars.")] = False,
) -> None:
    """Pretrain a reference on the shipped BallRun data, retrofit it with PREFINE, compare."""
    from retrofit.demo import DemoConfig, format_table, run_demo

    config = DemoConfig(
        dataset=dataset, cost_threshold=cost_threshold, prefine_steps=steps, bc_steps=bc_steps,
        episodes=episodes, seed=seed, device=device, progress=not quiet,
    )
    report = run_demo(config, out)
    typer.echo(format_table(report))
    typer.echo(f"wrote {out / 'demo.json'} and {out / 'reward_cost.png'}")


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x.strip())


@app.command()
def collect(
    task: Annotated[str, typer.Argument(help="DSRL task, e.g. BallRun or OfflineBallRun-v0.")],
    out: Annotated[
        Path, typer.Option(help="Output .hdf5 file, or a folder for a DSRL-style file name.")
    ],
    episodes: Annotated[int, typer.Option(help="Number of trajectories.")] = 1000,
    train_steps: Annotated[int, typer.Option(help="PPO steps per behaviour run.")] = 60_000,
    penalties: Annotated[str, typer.Option(help="Cost penalties k of r − k·s·c.")] = (
        "0,0.25,0.5,1,2"
    ),
    budgets: Annotated[
        str, typer.Option(help="PPO-Lagrangian budgets as fractions of the largest κ ('' = none).")
    ] = "0.25,0.5,1,1.5",
    noise_levels: Annotated[str, typer.Option(help="Gaussian action-noise scales.")] = "0,0.15,0.4",
    cache_dir: Annotated[Path | None, typer.Option(help="Reuse trained snapshots here.")] = None,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    quiet: Annotated[bool, typer.Option(help="Hide progress bars.")] = False,
) -> None:
    """Make a DSRL-format dataset in the real environment (PPO on r − k·c, several k and noises)."""
    from retrofit.collect import collect_dataset
    from retrofit.collect.collector import dsrl_filename

    data = collect_dataset(
        task, out, episodes, train_steps=train_steps, penalties=_floats(penalties),
        budgets=_floats(budgets), noise_levels=_floats(noise_levels), seed=seed,
        progress=not quiet, cache_dir=cache_dir,
    )
    path = out / dsrl_filename(data) if out.is_dir() or not out.suffix else out
    typer.echo(f"wrote {path}: {data.n_episodes} episodes, {len(data)} transitions")


@app.command()
def tasks() -> None:
    """List the DSRL tasks with their constants and cost thresholds."""
    from retrofit.tasks import TASKS

    for info in TASKS.values():
        kappas = "/".join(f"{k:g}" for k in info.cost_thresholds)
        typer.echo(
            f"{info.env_id:42s} steps={info.max_episode_steps:<5d} R=[{info.min_reward:g}, "
            f"{info.max_reward:g}] C_max={info.max_cost:g} κ={kappas}"
        )


def _csv_list(text: str | None, cast: type) -> tuple | None:
    if text is None or not text.strip():
        return None
    return tuple(cast(x) for x in text.split(",") if x.strip())


def _overrides(items: list[str] | None) -> dict[str, dict[str, object]]:
    import json

    out: dict[str, dict[str, object]] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        method, dot, name = key.partition(".")
        if not sep or not dot:
            raise typer.BadParameter(f"--set {item!r}: use METHOD.FIELD=VALUE, e.g. cpq.num_q=2.")
        try:
            parsed: object = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out.setdefault(method, {})[name] = parsed
    return out


@app.command()
def compare(
    task: Annotated[str, typer.Argument(help="DSRL task, e.g. BallRun.")],
    methods: Annotated[str, typer.Option(help="Comma-separated registered methods.")] = (
        "prefine,presa,cpq,safedice,bc-all,bc-safe,ppl,dpo"
    ),
    out: Annotated[Path, typer.Option(help="Output folder (finished cells are reused).")] = Path(
        "runs/compare"
    ),
    dataset: Annotated[str | None, typer.Option(help="DSRL HDF5 (default: shipped).")] = None,
    thresholds: Annotated[str | None, typer.Option(help="κ values, e.g. 10,20,40 "
                                                   "(default: the task's set).")] = None,
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
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    threads: Annotated[int, typer.Option(help="torch CPU threads per cell.")] = 1,
    in_process: Annotated[bool, typer.Option(help="Run cells in this process (peak RSS is then "
                                             "the whole run's).")] = False,
    set_: Annotated[list[str] | None, typer.Option("--set", help="METHOD.FIELD=VALUE config "
                                                   "override; repeatable.")] = None,
    quiet: Annotated[bool, typer.Option(help="Hide progress bars.")] = True,
) -> None:
    """Train every method on the same data and iterations; time, evaluate, write CSV/MD/PNGs."""
    from retrofit.compare import CompareConfig, run_compare

    config = CompareConfig(
        task=task, methods=_csv_list(methods, str) or (), out=out, dataset=dataset,
        cost_thresholds=_csv_list(thresholds, float), seeds=_csv_list(seeds, int) or (0,),
        steps=steps, batch_size=batch_size, eval_episodes=episodes,
        checkpoint_every=checkpoint_every, checkpoint_episodes=checkpoint_episodes,
        safe_reward_fraction=safe_reward_fraction, bc_steps=bc_steps, device=device,
        threads=threads, isolate=not in_process,
        overrides=_overrides(set_), progress=not quiet,
    )
    run_compare(config, log=typer.echo)
    typer.echo((out / "results.md").read_text())
    typer.echo(f"wrote {out / 'results.csv'}, {out / 'results.md'}, {out / 'reward_cost.png'}, "
               f"{out / 'safe_fraction.png'}")


def main() -> None:
    """Entry point of the ``retrofit`` console script."""
    app()
