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


@app.command()
def collect(
    task: Annotated[str, typer.Argument(help="DSRL task, e.g. BallRun or OfflineBallRun-v0.")],
    out: Annotated[Path, typer.Option(help="Output HDF5 file (written atomically).")],
    episodes: Annotated[int, typer.Option(help="Number of trajectories.")] = 1000,
    train_steps: Annotated[int | None, typer.Option(help="PPO steps per behaviour policy.")] = None,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    quiet: Annotated[bool, typer.Option(help="Hide progress bars.")] = False,
) -> None:
    """Make a DSRL-format dataset in the real environment (PPO on r − k·c, several k and noises)."""
    from retrofit.collect import collect_dataset

    kwargs = {} if train_steps is None else {"train_steps": train_steps}
    data = collect_dataset(task, out, episodes, seed=seed, progress=not quiet, **kwargs)
    typer.echo(f"wrote {out}: {data.n_episodes} episodes, {len(data)} transitions")


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


def main() -> None:
    """Entry point of the ``retrofit`` console script."""
    app()
