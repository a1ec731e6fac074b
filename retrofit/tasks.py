"""DSRL task constants and score normalisation.

The numbers are those of ``dsrl/infos.py`` (dsrl 0.1.0); ``tests/test_tasks.py`` checks that they
equal the installed package's. They live here so that ``import retrofit`` does not import the
simulators (importing ``dsrl`` loads pybullet and MuJoCo).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retrofit.errors import EnvironmentError_
from retrofit.thresholds import check_cost_threshold


@dataclass(frozen=True)
class TaskInfo:
    """Constants of one DSRL task (dsrl ``infos.py``) and its constraint-variation thresholds."""

    env_id: str
    max_episode_steps: int
    min_reward: float
    max_reward: float
    max_cost: float
    cost_thresholds: tuple[float, ...]
    domain: str  # "bullet" (BulletGym) or "safety" (SafetyGym); selects method presets


_BULLET = (10.0, 20.0, 40.0)
_SAFETY = (20.0, 40.0, 80.0)

# name -> (env id, max steps, R_min, R_max, C_max, κ set, domain)
_ROWS: dict[str, tuple[str, int, float, float, float, tuple[float, ...], str]] = {
    "AntCircle": (
        "OfflineAntCircle-v0", 500, 0.0177031010389328, 460.7091979980469,
        200, _BULLET, "bullet",
    ),
    "AntRun": (
        "OfflineAntRun-v0", 200, 0.001767391717990563, 955.4818725585938,
        150, _BULLET, "bullet",
    ),
    "BallCircle": (
        "OfflineBallCircle-v0", 200, 0.38312244415283203, 881.46337890625,
        80, _BULLET, "bullet",
    ),
    "BallRun": (
        "OfflineBallRun-v0", 100, 26.339754104614258, 1327.445556640625,
        80, _BULLET, "bullet",
    ),
    "CarCircle": (
        "OfflineCarCircle-v0", 300, 3.484419822692871, 534.3060913085938,
        100, _BULLET, "bullet",
    ),
    "CarRun": (
        "OfflineCarRun-v0", 200, 204.28726196289062, 574.6533203125,
        40, _BULLET, "bullet",
    ),
    "DroneCircle": (
        "OfflineDroneCircle-v0", 300, 207.794189453125, 996.38916015625,
        100, _BULLET, "bullet",
    ),
    "DroneRun": (
        "OfflineDroneRun-v0", 200, 10.557029724121094, 682.8330078125,
        140, _BULLET, "bullet",
    ),
    "CarButton1": (
        "OfflineCarButton1Gymnasium-v0", 1000, 0.0028926206826067613, 44.420003345738984,
        250, _SAFETY, "safety",
    ),
    "CarButton2": (
        "OfflineCarButton2Gymnasium-v0", 1000, 0.001767391717990563, 41.99513815522894,
        300, _SAFETY, "safety",
    ),
    "CarCircle1": (
        "OfflineCarCircle1Gymnasium-v0", 500, 8.037073135375977, 24.94155502319336,
        250, _SAFETY, "safety",
    ),
    "CarCircle2": (
        "OfflineCarCircle2Gymnasium-v0", 500, 5.113386154174805, 25.950098037719727,
        398, _SAFETY, "safety",
    ),
    "CarGoal1": (
        "OfflineCarGoal1Gymnasium-v0", 1000, 0.012232819540852091, 39.907809198384705,
        120, _SAFETY, "safety",
    ),
    "CarGoal2": (
        "OfflineCarGoal2Gymnasium-v0", 1000, 0.001032874531954775, 28.902897990056502,
        200, _SAFETY, "safety",
    ),
    "CarPush1": (
        "OfflineCarPush1Gymnasium-v0", 1000, 0.013700173533941762, 16.304467598905237,
        200, _SAFETY, "safety",
    ),
    "CarPush2": (
        "OfflineCarPush2Gymnasium-v0", 1000, 0.00029391133526335267, 15.141648491514314,
        250, _SAFETY, "safety",
    ),
    "PointButton1": (
        "OfflinePointButton1Gymnasium-v0", 1000, 0.008822109034937853, 41.19301568767707,
        200, _SAFETY, "safety",
    ),
    "PointButton2": (
        "OfflinePointButton2Gymnasium-v0", 1000, 0.014114166087574098, 42.8985953616709,
        250, _SAFETY, "safety",
    ),
    "PointCircle1": (
        "OfflinePointCircle1Gymnasium-v0", 500, 20.067626953125, 61.72819519042969,
        200, _SAFETY, "safety",
    ),
    "PointCircle2": (
        "OfflinePointCircle2Gymnasium-v0", 500, 20.478347778320312, 54.02184295654297,
        299, _SAFETY, "safety",
    ),
    "PointGoal1": (
        "OfflinePointGoal1Gymnasium-v0", 1000, 0.01196012764197707, 30.071114857340543,
        100, _SAFETY, "safety",
    ),
    "PointGoal2": (
        "OfflinePointGoal2Gymnasium-v0", 1000, 0.002616959830266108, 27.717709787852737,
        200, _SAFETY, "safety",
    ),
    "PointPush1": (
        "OfflinePointPush1Gymnasium-v0", 1000, 0.0014001545292344209, 16.518654299293367,
        150, _SAFETY, "safety",
    ),
    "PointPush2": (
        "OfflinePointPush2Gymnasium-v0", 1000, 0.0012438183001730607, 14.691039145644403,
        200, _SAFETY, "safety",
    ),
    "AntVelocity": (
        "OfflineAntVelocityGymnasium-v1", 1000, 6.1519012451171875, 2976.276611328125,
        250, _SAFETY, "safety",
    ),
    "HalfCheetahVelocity": (
        "OfflineHalfCheetahVelocityGymnasium-v1", 1000, 5.7509765625, 2806.93310546875,
        250, _SAFETY, "safety",
    ),
    "HopperVelocity": (
        "OfflineHopperVelocityGymnasium-v1", 1000, 37.05154800415039, 1911.396728515625,
        250, _SAFETY, "safety",
    ),
    "SwimmerVelocity": (
        "OfflineSwimmerVelocityGymnasium-v1", 1000, 0.07114458084106445, 238.95831298828125,
        200, _SAFETY, "safety",
    ),
    "Walker2dVelocity": (
        "OfflineWalker2dVelocityGymnasium-v1", 1000, 18.668498992919922, 3418.223876953125,
        300, _SAFETY, "safety",
    ),
}

TASKS: dict[str, TaskInfo] = {
    row[0]: TaskInfo(row[0], row[1], row[2], row[3], float(row[4]), row[5], row[6])
    for row in _ROWS.values()
}
_SHORT_NAMES = {name: row[0] for name, row in _ROWS.items()}


def task_info(task: str) -> TaskInfo:
    """Return the constants of a DSRL task given its env id (``OfflineBallRun-v0``) or short name.

    Short names are those of dsrl's ``infos.py`` (``BallRun``, ``HalfCheetahVelocity``, ...).
    """
    env_id = _SHORT_NAMES.get(task, task)
    if env_id not in TASKS:
        known = ", ".join(sorted(TASKS))
        raise EnvironmentError_(
            f"task={task!r} is not a DSRL task this library knows. Use one of: {known}. "
            "MetaDrive tasks are not supported here: MetaDrive downloads its assets at run time."
        )
    return TASKS[env_id]


def normalized_score(
    task: str, reward: float | np.ndarray, cost: float | np.ndarray, cost_threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """DSRL-normalised reward and cost, as dsrl's ``get_normalized_score``.

    Equals ``get_normalized_score`` after ``set_target_cost(cost_threshold)``.

    ``norm_reward = (R - R_min) / (R_max - R_min)``, ``norm_cost = (C + ε) / (κ + ε)`` with
    ``ε = 1`` when ``κ == 0`` else ``0`` (DSRL, Liu et al. 2023, §4). A policy is safe when
    its mean ``norm_cost <= 1`` (:func:`retrofit.thresholds.is_safe_on_average`).
    """
    info = task_info(task)
    check_cost_threshold(cost_threshold, error=EnvironmentError_)
    eps = 1.0 if cost_threshold == 0 else 0.0
    reward_arr = np.asarray(reward, dtype=np.float64)
    cost_arr = np.asarray(cost, dtype=np.float64)
    norm_reward = (reward_arr - info.min_reward) / (info.max_reward - info.min_reward)
    norm_cost = (cost_arr + eps) / (cost_threshold + eps)
    return norm_reward, norm_cost
