"""``retrofit demo``: pretrain a reference, retrofit it with PREFINE, evaluate both, report.

Runs on a small BallCircle dataset shipped inside the package (made by ``retrofit collect``; see
``retrofit/data/default/README.md``), so it needs no download. BallCircle is the demo task
because its data hold safe trajectories that keep most of the unsafe ones' reward (circling
inside the boundary); on BallRun the cost is a speed limit, so every safe trajectory earns less
than half of what the fast ones do.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from retrofit.atomic import atomic_write_text
from retrofit.config_base import Config
from retrofit.data.shipped import default_dataset_path
from retrofit.data.splits import DEFAULT_TOP_FRACTION, check_top_fraction
from retrofit.errors import ConfigError
from retrofit.thresholds import is_safe_on_average

DEMO_TASK = "OfflineBallCircle-v0"


@dataclass(frozen=True)
class DemoConfig(Config):
    """Settings of the demo; defaults finish in a few minutes on 2 CPU cores.

    dataset: DSRL-format HDF5 file (None: the dataset shipped for ``task``, BallCircle).
    task: DSRL env id the data comes from.
    cost_threshold: κ; 20 is the middle of BulletGym's {10, 20, 40}.
    n_preferred / n_nonpreferred: PREFINE's N_p = 100 and N_np = 20 (PREFINE §5.1).
    top_fraction: the share of SAFE episodes D_p is drawn from (0: exactly the n_preferred best,
        ``retrofit.data.splits.DEFAULT_TOP_FRACTION``; 0.5 the earlier default).
    bc_steps: reference-policy BC steps; prefine_steps: fine-tuning steps.
    reference_policy / reference_std: the reference's class and fixed spread (half-range units),
        ``BCConfig.policy`` / ``fixed_std``: "clipped-gaussian" with 0.2, the likelihood under
        which PREFINE's log-likelihoods stay bounded on this data (docs/prefine.md); None for a
        learned spread; "tanh-gaussian" for the earlier reference.
    episodes: evaluation episodes per policy (≥ 20 as OSRL); seed: one seed for everything.
    threads: torch CPU threads (the recorded demo numbers are at 1; other counts give other
        digits).
    """

    dataset: str | None = None
    task: str = DEMO_TASK
    cost_threshold: float = 20.0
    n_preferred: int = 100
    n_nonpreferred: int = 20
    top_fraction: float = DEFAULT_TOP_FRACTION
    bc_steps: int = 20_000
    prefine_steps: int = 20_000
    reference_policy: Literal["tanh-gaussian", "clipped-gaussian"] = "clipped-gaussian"
    reference_std: float | None = 0.2
    episodes: int = 20
    seed: int = 0
    device: str = "auto"
    threads: int = 1
    progress: bool = True

    def check(self) -> None:
        """κ is a valid cost threshold; step, sample and episode counts >= 1 (named as on the
        command line); ``seed`` >= 0; a valid thread count."""
        from retrofit.device import check_threads
        from retrofit.thresholds import check_cost_threshold

        check_cost_threshold(self.cost_threshold)
        for name in ("n_preferred", "n_nonpreferred", "bc_steps", "prefine_steps", "episodes"):
            value = getattr(self, name)
            if value < 1:
                option = {"prefine_steps": "steps"}.get(name, name)
                raise ConfigError(
                    f"{name}={value!r} must be an integer >= 1 (CLI: --{option.replace('_', '-')})."
                )
        self.require_at_least(0, "seed")
        check_top_fraction(self.top_fraction)
        check_threads(self.threads)


def _scores(result: Any) -> dict[str, float]:
    return {
        "normalized_reward": float(result.normalized_reward),
        "normalized_cost": float(result.normalized_cost),
        "reward": float(result.reward),
        "cost": float(result.cost),
    }


def format_table(report: dict[str, Any]) -> str:
    """The before/after table the demo prints."""
    rows = [("policy", "reward", "cost", "norm. reward", "norm. cost", "safe")]
    for name in ("reference", "retrofitted"):
        s = report[name]
        rows.append((
            name, f"{s['reward']:.1f}", f"{s['cost']:.2f}", f"{s['normalized_reward']:.3f}",
            f"{s['normalized_cost']:.3f}",
            "yes" if is_safe_on_average(s["normalized_cost"]) else "no",
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    header = (
        f"{report['task']}  κ={report['cost_threshold']:g}  {report['episodes']} episodes each, "
        f"PREFINE fit {report['fit_wall_clock_s']:.1f} s"
    )
    return "\n".join([header, *lines])


def run_demo(config: DemoConfig, out: str | Path, *, overwrite: bool = False) -> dict[str, Any]:
    """Run the demo: write demo.json, reward_cost.png and both policies; return the report.

    A non-empty ``out`` is refused unless ``overwrite`` (:class:`~retrofit.errors.ConfigError`),
    and ``out`` is checked writable before any training.
    """
    from retrofit.device import cpu_model, set_threads
    from retrofit.outputs import check_output_free, check_writable

    out = Path(out)
    check_output_free(out, overwrite)  # before the heavy imports: refusals take no time
    check_writable(out)

    from retrofit.data.dataset import TrajectoryDataset
    from retrofit.evaluation import evaluate
    from retrofit.plotting import plot_reward_cost
    from retrofit.policies.io import save_policy
    from retrofit.pretrain import BCConfig, pretrain_reference
    from retrofit.retrofitter import Retrofitter

    set_threads(config.threads)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    path = config.dataset or default_dataset_path(config.task)
    dataset = TrajectoryDataset.from_hdf5(path, task=config.task)
    reference = pretrain_reference(
        dataset,
        BCConfig(steps=config.bc_steps, policy=config.reference_policy,
                 fixed_std=config.reference_std),
        device=config.device, seed=config.seed,
        progress=config.progress,
    )
    preferred, nonpreferred = dataset.split_preferences(
        cost_threshold=config.cost_threshold, n_preferred=config.n_preferred,
        n_nonpreferred=config.n_nonpreferred, seed=config.seed, top_fraction=config.top_fraction,
    )
    retrofitter = Retrofitter(
        reference, "prefine", device=config.device, seed=config.seed, progress=config.progress,
        log_dir=out, overwrite=overwrite,
    )
    retrofitted = retrofitter.fit(preferred, nonpreferred, steps=config.prefine_steps)
    save_policy(reference, out / "reference.pt")
    save_policy(retrofitted, out / "retrofitted.pt")

    evals = {
        name: evaluate(policy, config.task, config.cost_threshold, episodes=config.episodes,
                       seed=config.seed, deterministic=True)
        for name, policy in (("reference", reference), ("retrofitted", retrofitted))
    }
    report: dict[str, Any] = {
        "task": config.task,
        "cost_threshold": config.cost_threshold,
        "episodes": config.episodes,
        "reference": _scores(evals["reference"]),
        "retrofitted": _scores(evals["retrofitted"]),
        "fit_wall_clock_s": round(retrofitter.train_wall_clock_s, 2),
        "total_wall_clock_s": round(time.perf_counter() - started, 2),
        # the digits depend on both (README: the recorded run and other CPUs)
        "threads": config.threads, "cpu": cpu_model(),
        "dataset": str(path),
        "split": {
            "preferred": preferred.metadata.get("split", {}),
            "nonpreferred": nonpreferred.metadata.get("split", {}),
        },
        "config": asdict(config),
    }
    plot_reward_cost(
        out / "reward_cost.png",
        dataset_returns=dataset.episode_returns(),
        groups={name: (res.rewards, res.costs) for name, res in evals.items()},
        cost_threshold=config.cost_threshold,
        title=f"{config.task}: PREFINE retrofit (κ={config.cost_threshold:g})",
    )
    atomic_write_text(out / "demo.json", json.dumps(report, indent=2))
    return report
