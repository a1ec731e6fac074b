"""Per-task settings of ``retrofit suite``: one row per DSRL task, as data (OSRL's habit).

Each of the 29 tasks of :mod:`retrofit.tasks` has one :class:`TaskSettings`: how to collect its
data in the real environment when DSRL's own file is absent (``retrofit collect``: PPO steps per
behaviour run, fixed penalties ``k``, PPO-Lagrangian budgets, episodes, action noise; see
``docs/collection.md``), the reference policy's BC steps, PREFINE's fine-tuning steps, the κ set
(DSRL's constraint variation, PREFINE §5.1) and the seeds.

Where a collection was run, its settings are the ones recorded here (``data`` says where the
file is): BallRun, BallCircle, CarRun, CarCircle, HopperVelocity and Walker2dVelocity ship with
retrofit; HalfCheetahVelocity, DroneRun and SwimmerVelocity are recorded in ``docs/collection.md``
(over 10 MB); CarRun, DroneRun, CarCircle and the Swimmer/Hopper/Walker2d/Ant velocity tasks use
the settings of the collection run for PREFINE's ten tasks (Table 1). The other tasks
carry their domain's untried preset (``data="untried"``); their smoke run is in the slow tests.
Every row's ``outcome`` says, in one line, whether its collection was ever run and what it gave
(from ``docs/collection.md``, ``docs/suite.md`` and ``docs/results/suite``), so a user can tell
before a run whether the task's data are known to support a result.

BC and PREFINE steps are the demo's 20 000 each, far below PREFINE's 500k-step schedule
(PREFINE Appendix A.4): a budget that fits a 2-core CPU, stated in every results file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from retrofit.collect.collector import DEFAULT_BUDGETS, DEFAULT_NOISE_LEVELS, DEFAULT_PENALTIES
from retrofit.config_base import Config
from retrofit.data.splits import DEFAULT_TOP_FRACTION, check_top_fraction
from retrofit.errors import ConfigError, EnvironmentError_
from retrofit.tasks import TASKS, task_info
from retrofit.thresholds import check_cost_threshold

TEN_PENALTIES: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)  # the ten-task collection run's

DATA_KINDS = ("shipped", "recorded", "collection-run", "untried")


def _floats(values: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


@dataclass(frozen=True)
class CollectionSettings(Config):
    """How ``retrofit collect`` makes a task's data (``retrofit.collect.collect_dataset``).

    episodes: trajectories in the file.
    train_steps: PPO environment steps per behaviour run.
    penalties: fixed cost penalties ``k`` of ``r − k·s·c`` (docs/collection.md, eq. 1).
    budgets: PPO-Lagrangian budgets as multiples of the task's largest κ (eq. 3); ``()``: none.
    noise_levels: Gaussian action-noise scales σ (eq. 2), fractions of the half action range.
    seed: the collection's seed (equal seeds give equal files on one machine).
    """

    episodes: int
    train_steps: int
    penalties: tuple[float, ...] = DEFAULT_PENALTIES
    budgets: tuple[float, ...] = DEFAULT_BUDGETS
    noise_levels: tuple[float, ...] = DEFAULT_NOISE_LEVELS
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("penalties", "budgets", "noise_levels"):
            object.__setattr__(self, name, _floats(getattr(self, name)))

    def check(self) -> None:
        """Episodes and PPO steps >= 1, at least one behaviour run."""
        for name in ("episodes", "train_steps"):
            value = getattr(self, name)
            if value < 1:
                raise ConfigError(f"collection {name}={value!r} must be an integer >= 1.")
        if not self.penalties and not self.budgets:
            raise ConfigError(
                "collection penalties=() and budgets=(): give at least one behaviour run, e.g. "
                "penalties=(0, 0.5, 1, 2)."
            )

    @property
    def runs(self) -> int:
        """Number of PPO behaviour runs (fixed penalties plus budgets)."""
        return len(self.penalties) + len(self.budgets)

    def collect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``collect_dataset`` (after ``task, out, n_episodes``)."""
        return {"penalties": self.penalties, "budgets": self.budgets,
                "train_steps": self.train_steps, "noise_levels": self.noise_levels,
                "seed": self.seed}

    def command(self, task: str, out: str = "DIR") -> str:
        """The ``retrofit collect`` command line that makes this data."""
        def csv(values: tuple[float, ...]) -> str:
            return ",".join(f"{v:g}" for v in values)

        return (f"retrofit collect {task} --out {out} --collect-episodes {self.episodes} "
                f"--train-steps {self.train_steps} --penalties {csv(self.penalties)} --budgets "
                f"\"{csv(self.budgets)}\" --noise-levels {csv(self.noise_levels)} --seed "
                f"{self.seed}")


@dataclass(frozen=True)
class TaskSettings(Config):
    """Everything ``retrofit suite TASK`` needs for one task.

    task: DSRL env id (``OfflineCarRun-v0``); name: dsrl's short name (``CarRun``).
    collection: how to make the data when no file is found (:class:`CollectionSettings`).
    bc_steps: BC steps of π_ref (top-30 % reward episodes, PREFINE §5.1).
    prefine_steps: fine-tuning iterations (every method of the run gets as many).
    cost_thresholds: the κ set (DSRL's constraint variation; BulletGym 10/20/40, SafetyGym
        20/40/80).
    seeds: seeds per κ (each draws its own π_ref, D_p/D_np split and training randomness).
    n_preferred / n_nonpreferred: N_p = 100, N_np = 20 (PREFINE §5.1).
    top_fraction: the share of SAFE episodes D_p is drawn from (0: exactly the n_preferred best,
        ``retrofit.data.splits.DEFAULT_TOP_FRACTION``; 0.5 the default before).
    eval_episodes: deterministic evaluation episodes per policy (20, as OSRL).
    data: where the settings come from: ``shipped`` (file in retrofit/data/default),
        ``recorded`` (made once, documented in docs/collection.md), ``collection-run`` (the
        ten-task collection's settings), ``untried`` (domain preset, never collected in full).
    outcome: whether the collection was ever tried and what it gave, in one line (where the
        docs record it): the data's reward and cost, and the suite's result on them.
    """

    task: str
    name: str
    collection: CollectionSettings
    bc_steps: int = 20_000
    prefine_steps: int = 20_000
    cost_thresholds: tuple[float, ...] = ()
    seeds: tuple[int, ...] = (0, 1, 2)
    n_preferred: int = 100
    n_nonpreferred: int = 20
    top_fraction: float = DEFAULT_TOP_FRACTION
    eval_episodes: int = 20
    data: str = "untried"
    outcome: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.cost_thresholds:
            object.__setattr__(self, "cost_thresholds", task_info(self.task).cost_thresholds)
        object.__setattr__(self, "cost_thresholds", _floats(self.cost_thresholds))
        object.__setattr__(self, "seeds", tuple(self.seeds))

    def check(self) -> None:
        """A DSRL task, counts >= 1, one or more seeds >= 0, valid κ, a known data kind."""
        if self.task not in TASKS:
            raise ConfigError(f"task={self.task!r} is not a DSRL env id of retrofit.tasks.")
        self.require_at_least(1, "bc_steps", "prefine_steps", "n_preferred", "n_nonpreferred",
                              "eval_episodes")
        if not self.seeds or any(s < 0 for s in self.seeds):
            raise ConfigError(f"seeds={self.seeds!r} must be one or more integers >= 0.")
        for cost_threshold in self.cost_thresholds:
            check_cost_threshold(cost_threshold, "cost_thresholds")
        if self.data not in DATA_KINDS:
            raise ConfigError(f"data={self.data!r} must be one of {DATA_KINDS}.")
        check_top_fraction(self.top_fraction)

    def override(self, **changes: Any) -> TaskSettings:
        """A copy with the given fields replaced; ``None`` values leave a field as it is.

        Collection fields (``episodes``, ``train_steps``, ``penalties``, ``budgets``,
        ``noise_levels``, ``collect_seed``) go to :attr:`collection`.
        """
        names = {f.name for f in dataclasses.fields(CollectionSettings)}
        collect = {("seed" if k == "collect_seed" else k): v for k, v in changes.items()
                   if (k in names - {"seed"} or k == "collect_seed") and v is not None}
        own = {k: v for k, v in changes.items()
               if k not in names and k != "collect_seed" and v is not None}
        known = {f.name for f in dataclasses.fields(TaskSettings)}
        unknown = sorted(set(own) - known)
        if unknown:
            raise ConfigError(f"override: unknown setting(s) {unknown}; valid: "
                              f"{sorted(known | names - {'seed'} | {'collect_seed'})}.")
        return dataclasses.replace(
            self, collection=dataclasses.replace(self.collection, **collect), **own
        )

    def summary(self) -> str:
        """One line for ``retrofit tasks``: data, collection, BC/PREFINE steps, κ, seeds, outcome
        (whether the collection was ever run and what it gave)."""
        c = self.collection
        thresholds_text = "/".join(f"{k:g}" for k in self.cost_thresholds)
        budgets = "/".join(f"{b:g}" for b in c.budgets) or "none"
        return (f"data={self.data} collect: {c.episodes} ep, {c.train_steps} PPO steps × "
                f"{c.runs} runs (k={'/'.join(f'{k:g}' for k in c.penalties)}, budgets={budgets}, "
                f"σ={'/'.join(f'{s:g}' for s in c.noise_levels)}); BC {self.bc_steps}, PREFINE "
                f"{self.prefine_steps} steps; κ={thresholds_text}; seeds={len(self.seeds)}"
                + (f"; outcome: {self.outcome}" if self.outcome else ""))


# ----------------------------------------------------------------------------- presets
# The ten-task collection run (docs/collection.md): BulletGym Run/Circle tasks 50k PPO steps,
# four fixed penalties and two budgets; SafetyGym tasks 100k steps and no budget runs (fixed
# penalties already give safe fast policies on the velocity tasks, as on HalfCheetahVelocity).
_BULLET = {"train_steps": 50_000, "penalties": TEN_PENALTIES, "budgets": (0.5, 1.0)}
_SAFETY = {"train_steps": 100_000, "penalties": TEN_PENALTIES, "budgets": ()}


def _row(name: str, data: str, outcome: str, **collection: Any) -> TaskSettings:
    return TaskSettings(task=task_info(name).env_id, name=name, data=data, outcome=outcome,
                        collection=CollectionSettings(**collection))


_NAV_OUTCOME = ("never collected at this preset: ≥ 1–2 h of environment steps alone on the "
                "2-core CPU (docs/suite.md); only the 6-episode smoke test")

SETTINGS: dict[str, TaskSettings] = {s.task: s for s in (
    # BulletGym — shipped data (retrofit/data/default/README.md has the commands)
    _row("BallRun", "shipped",
         "collected (972 ep, shipped): norm. reward −0.20…1.21, best safe 0.30/0.35/0.52 at κ "
         "10/20/40 (a speed limit: safe episodes earn little); suite: PREFINE safe at 0.27",
         episodes=972, train_steps=60_000),
    _row("BallCircle", "shipped",
         "collected (800 ep, shipped): best safe 0.70–0.77; suite: PREFINE safe at every κ, "
         "83–93 % of π_ref's 0.72", episodes=800, train_steps=60_000),
    # BulletGym — PREFINE's Table 1 tasks, the ten-task collection run (CarRun's file ships)
    _row("CarRun", "shipped",
         "collected (600 ep, shipped): norm. reward −0.97…2.89, best safe 0.93–1.13; suite: "
         "PREFINE safe at 0.87 (π_ref 2.78, unsafe)", episodes=600, **_BULLET),
    _row("DroneRun", "recorded",
         "collected (600 ep, 14 MB, not shipped): best safe 0.50–0.52, top decile 1.07 and "
         "unsafe; suite: PREFINE safe only at κ=10", episodes=600, **_BULLET),
    _row("CarCircle", "shipped",
         "collected (400 ep, shipped): weak PPO, norm. reward ≤ 0.41, best safe 0.36; suite: "
         "π_ref 0.13, PREFINE 0.05 and safe", episodes=400, **_BULLET),
    # BulletGym — the rest: the preset; Ant learns slowly, so twice the PPO steps
    _row("AntRun", "untried",
         "never collected at this preset (≥ 0.4 h of environment steps here, docs/suite.md); "
         "only the 6-episode smoke test", episodes=600, **{**_BULLET, "train_steps": 100_000}),
    _row("AntCircle", "untried",
         "never collected at this preset (≥ 0.5 h of environment steps here, docs/suite.md); "
         "only the 6-episode smoke test", episodes=400, **{**_BULLET, "train_steps": 100_000}),
    _row("DroneCircle", "untried",
         "tried (issue 25): smoke test passes (17.7 s), and a 9.5-min `retrofit suite "
         "DroneCircle --thresholds 20 --seeds 0,1` run with its own collection gave data that "
         "never learned the task: π_ref norm. reward −0.243 (PREFINE −0.254, BC-Safe −0.255)",
         episodes=400, **_BULLET),
    # SafetyGym velocity — HalfCheetah recorded in docs/collection.md (200k steps, 5 penalties)
    _row("HalfCheetahVelocity", "recorded",
         "collected 3× (300 ep, 200k PPO steps, not shipped): best safe 0.45–0.77; suite at 2k "
         "steps: every method stands still (norm. reward ≈ 0)",
         episodes=300, train_steps=200_000, budgets=()),
    _row("SwimmerVelocity", "recorded",
         "collected (200 ep, 10.2 MB, not shipped): norm. reward 0.07–0.20, 3 % safe at κ=20 and "
         "86–100 % at κ ≥ 40: hardly a trade-off", episodes=200, **_SAFETY),
    _row("HopperVelocity", "shipped",
         "collected (200 ep, shipped): 60 % of the top-decile episodes already safe; a longer "
         "PPO budget would give fast unsafe gaits", episodes=200, **_SAFETY),
    _row("Walker2dVelocity", "shipped",
         "collected (200 ep, shipped): norm. reward ≤ 0.13, every episode safe at κ ≥ 40; a "
         "longer PPO budget is needed", episodes=200, **_SAFETY),
    _row("AntVelocity", "recorded",
         "collected (200 ep, 15 MB, not shipped): largest episode cost 16 < every κ, so no "
         "D_p/D_np split exists; a longer PPO budget is needed", episodes=200, **_SAFETY),
    # SafetyGym navigation (safety-gymnasium Car/Point × Button/Circle/Goal/Push): the preset
    *(_row(f"{agent}{kind}{level}", "untried",
           _NAV_OUTCOME + (" (passed, 68.6 s)" if f"{agent}{kind}{level}" == "PointGoal1" else ""),
           episodes=300 if kind == "Circle" else 200, **_SAFETY)
      for agent in ("Car", "Point") for kind in ("Button", "Circle", "Goal", "Push")
      for level in (1, 2)),
)}


def short_name(env_id: str) -> str:
    """dsrl's short name of an env id (``OfflineCarRun-v0`` → ``CarRun``)."""
    return SETTINGS[env_id].name


def settings_for(task: str) -> TaskSettings:
    """The settings of ``task`` (short name ``CarRun`` or env id ``OfflineCarRun-v0``).

    Raises ``EnvironmentError_`` listing every task for a name retrofit does not know.
    """
    by_name = {s.name: s for s in SETTINGS.values()}
    found = SETTINGS.get(task) or by_name.get(task)
    if found is None:
        lowered = {n.lower(): n for n in by_name}
        hint = lowered.get(task.lower().removeprefix("offline").split("-")[0])
        raise EnvironmentError_(
            f"task={task!r} is not a DSRL task retrofit knows"
            + (f" (did you mean {hint}?)" if hint else "")
            + f". The {len(by_name)} tasks: {', '.join(sorted(by_name))} (or their env ids, "
            "see `retrofit tasks`). MetaDrive tasks are not supported: MetaDrive downloads its "
            "assets at run time."
        )
    return found


__all__ = ["SETTINGS", "CollectionSettings", "TaskSettings", "settings_for", "short_name"]
