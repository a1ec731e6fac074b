"""The one cost-threshold validator, the two "safe" criteria, and the modules that must use them."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest

from retrofit.data.dataset import TrajectoryDataset
from retrofit.errors import ConfigError, DataError
from retrofit.thresholds import check_cost_threshold, is_safe_on_average, is_safe_trajectory


@pytest.mark.parametrize("value", [0, 10, 20.0, np.float32(40), np.int64(5)])
def test_accepts_finite_non_negative_numbers(value: object) -> None:
    assert check_cost_threshold(value) == float(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [True, "10", None, math.nan, math.inf, -1.0])
def test_refuses_the_rest_naming_the_field(value: object) -> None:
    with pytest.raises(DataError, match=r"^cost_thresholds="):
        check_cost_threshold(value, "cost_thresholds", error=DataError)


def test_every_config_refuses_nan_the_same_way() -> None:
    from retrofit.methods.bc import BCAllConfig
    from retrofit.methods.cpq import CPQConfig

    for config in (BCAllConfig, CPQConfig):
        with pytest.raises(ConfigError, match="cost_threshold=nan must be a finite number"):
            config(cost_threshold=math.nan)


def test_mark_thresholds_old_keyword_warns() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from retrofit.plotting import mark_thresholds

    fig, ax = plt.subplots()
    with pytest.warns(DeprecationWarning, match="cost_thresholds"):
        labels = mark_thresholds(ax, thresholds=(10.0, 20.0))
    assert [t.get_text() for t in labels] == [" κ=10", " κ=20"]
    plt.close(fig)



# --------------------------------------------------------------- the one "safe trajectory" rule
COST_THRESHOLD = 10.0
LENGTH = 10  # steps per episode; also the segment length and max_episode_steps below
BELOW, AT, ABOVE = 0.0, COST_THRESHOLD, 2 * COST_THRESHOLD  # cost returns of episodes 0, 1, 2


def episodes(task: str | None = None) -> TrajectoryDataset:
    """Episodes 0, 1, 2 of ``LENGTH`` steps with cost return 0, exactly κ and 2κ (spread evenly
    over the steps: sums stay exact); episode ``e`` earns ``e + 1`` per step, so risk pays."""
    trajectories = []
    for e, cost_return in enumerate((BELOW, AT, ABOVE)):
        end = np.zeros(LENGTH, dtype=bool)
        end[-1] = True
        trajectories.append({
            "observations": np.full((LENGTH, 7), e, dtype=np.float32),
            "next_observations": np.full((LENGTH, 7), e, dtype=np.float32),
            "actions": np.zeros((LENGTH, 2), dtype=np.float32),
            "rewards": np.full(LENGTH, e + 1.0, dtype=np.float32),
            "costs": np.full(LENGTH, cost_return / LENGTH, dtype=np.float32),
            "terminals": np.zeros(LENGTH, dtype=bool),
            "timeouts": end,
        })
    return TrajectoryDataset.from_trajectories(trajectories, task=task)


# Each user of the rule answers, in its own terms: which of episodes 0, 1, 2 are safe?
def safe_by_predicate() -> list[bool]:
    return is_safe_trajectory(episodes().episode_returns()[1], COST_THRESHOLD).tolist()


def safe_by_split() -> list[bool]:
    from retrofit.data.splits import preference_split_indices

    rewards, costs = episodes().episode_returns()
    options = dict(n_nonpreferred=1, n_strata=1, top_fraction=1.0, unsafe_pool=3)
    _, _, report = preference_split_indices(rewards, costs, COST_THRESHOLD, n_preferred=1,
                                            **options)
    # asked for every SAFE episode, D_p is the SAFE set itself
    preferred, _, _ = preference_split_indices(rewards, costs, COST_THRESHOLD,
                                               n_preferred=report["n_safe"], **options)
    return [i in preferred.tolist() for i in range(3)]


def safe_by_bc_safe() -> list[bool]:
    """BC-Safe's filter, on D_p ∪ D_np (``bc-safe``) or the whole dataset (``bc-safe-full``)."""
    from retrofit.methods.bc import episodes_within_cost

    (kept,) = episodes_within_cost((episodes(),), COST_THRESHOLD)
    kept_costs = kept.episode_returns()[1].tolist()
    return [cost in kept_costs for cost in (BELOW, AT, ABOVE)]


def safe_by_feedback() -> list[bool]:
    """PreSa's synthetic labels; a segment is a whole episode, so its threshold is κ itself."""
    from retrofit.feedback import SAFE, synthesize

    data = episodes()
    labels = synthesize(data, n_pairs=60, segment_length=LENGTH, cost_threshold=COST_THRESHOLD,
                        seed=0, ties="random", max_episode_steps=LENGTH)
    by_start = dict(zip(labels.starts.ravel().tolist(), labels.safety.ravel().tolist(),
                        strict=True))
    return [by_start[int(start)] == SAFE for start in data.episode_starts[:-1]]


def safe_by_cdt_target() -> list[bool]:
    """CDT's default target return: the best return among the safe episodes."""
    from retrofit.methods.cdt import best_return_within

    returns, costs = episodes().episode_returns()
    best = best_return_within(returns, costs, COST_THRESHOLD)
    return [bool(r <= best) for r in returns]


def safe_by_dataset_stats() -> list[bool]:
    """``dataset_stats``' safe fraction at κ (BallRun's κ set holds 10); one episode = 1/3."""
    from retrofit.collect import dataset_stats

    fraction = dataset_stats(episodes("BallRun"))["thresholds"][COST_THRESHOLD]["safe_fraction"]
    n_safe = round(fraction * 3)
    return [e < n_safe for e in range(3)]  # safe episodes are the cheapest ones here


USERS = [safe_by_predicate, safe_by_split, safe_by_bc_safe, safe_by_feedback,
         safe_by_cdt_target, safe_by_dataset_stats]


@pytest.mark.parametrize("user", USERS, ids=lambda f: f.__name__)
def test_a_trajectory_exactly_at_the_threshold_is_unsafe_for_every_user(user) -> None:
    """PREFINE §3 and §5.1: safe is a cost return strictly below κ, for every module alike."""
    assert user() == [True, False, False]


def test_safe_trajectory_boundary_elementwise() -> None:
    costs = np.array([9.999, 10.0, 10.001])
    assert is_safe_trajectory(costs, 10).tolist() == [True, False, False]
    assert bool(is_safe_trajectory(0.0, 0.0)) is False  # κ = 0: no trajectory is safe
    assert is_safe_trajectory(np.float32(19.5), 20).shape == ()


def test_safe_on_average_is_the_policy_criterion_at_most_one() -> None:
    """DSRL's policy-level rule keeps ``≤``: a mean normalised cost of exactly 1 is safe."""
    assert is_safe_on_average(np.array([0.5, 1.0, 1.0 + 1e-9])).tolist() == [True, True, False]
    # a policy whose every episode costs exactly κ is safe on average, each episode unsafe
    assert bool(is_safe_on_average(COST_THRESHOLD / COST_THRESHOLD))
    assert not bool(is_safe_trajectory(COST_THRESHOLD, COST_THRESHOLD))


OTHER_THRESHOLD_NAMES = {"cost_limit", "target_cost"}  # κ under other names (OSRL's; CDT's target)
# Cost-versus-κ comparisons that are *not* the trajectory rule: (module, function) and reason.
NOT_THE_TRAJECTORY_RULE = {
    ("retrofit/estimate/selection.py", "within_limit"):
        "the policy criterion (mean cost ≤ κ) on an estimate's upper bound, in raw units "
        "(docs/offline-estimate.md)",
}


def _names(node: ast.AST) -> set[str]:
    return {n.id if isinstance(n, ast.Name) else n.attr for n in ast.walk(node)
            if isinstance(n, ast.Name | ast.Attribute)}


def _is_cost_threshold(names: set[str]) -> bool:
    return any("threshold" in n or n in OTHER_THRESHOLD_NAMES for n in names)


def _is_cost(names: set[str]) -> bool:
    return not _is_cost_threshold(names) and any("cost" in n for n in names)


def cost_versus_threshold(tree: ast.AST, module: str) -> list[int]:
    """Lines of ``tree`` where an ordering comparison has κ on one side and a cost on another,
    outside the functions of :data:`NOT_THE_TRAJECTORY_RULE`."""
    allowed = {id(node) for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef)
               and (module, fn.name) in NOT_THE_TRAJECTORY_RULE for node in ast.walk(fn)}
    lines = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Compare) and id(node) not in allowed
                and any(isinstance(op, ast.Lt | ast.LtE | ast.Gt | ast.GtE) for op in node.ops)):
            sides = [_names(side) for side in (node.left, *node.comparators)]
            if any(map(_is_cost_threshold, sides)) and any(map(_is_cost, sides)):
                lines.append(node.lineno)
    return lines


def test_the_scan_finds_a_hand_written_boundary() -> None:
    source = "safe = costs <= cost_threshold\nwithin = episode_costs < target_cost\nok = n >= 0"
    tree = ast.parse(source)
    assert cost_versus_threshold(tree, "x.py") == [1, 2]


def test_no_module_compares_a_cost_with_the_threshold_by_hand() -> None:
    """Every cost-versus-κ comparison is :func:`is_safe_trajectory` (or is listed above with
    its reason), so a new ``cost <= cost_threshold`` cannot bring back a second boundary."""
    root = Path(__file__).resolve().parents[1]
    found = []
    for path in sorted([*root.joinpath("retrofit").rglob("*.py"),
                        *root.joinpath("adapters").rglob("*.py")]):
        module = path.relative_to(root).as_posix()
        if module != "retrofit/thresholds.py":
            found += [f"{module}:{line}"
                      for line in cost_versus_threshold(ast.parse(path.read_text()), module)]
    assert not found, f"hand-written cost-vs-κ comparisons (use is_safe_trajectory): {found}"


def identifiers(tree: ast.AST) -> list[tuple[int, str]]:
    """Every name ``tree`` binds or reads (variables, arguments, keywords, attributes, functions,
    classes, imports), with its line."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute):
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.arg):
            found.append((node.lineno, node.arg))
        elif isinstance(node, ast.keyword) and node.arg is not None:
            found.append((node.lineno, node.arg))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.append((node.lineno, node.name))
        elif isinstance(node, ast.alias):
            found.append((node.lineno, node.asname or node.name))
    return found


def test_the_threshold_is_named_cost_threshold_in_code() -> None:
    """Issue 23: κ is ``cost_threshold`` in code; the Greek letter stays in comments and in text
    the reader sees (tables, legends), never in a Python name."""
    root = Path(__file__).resolve().parents[1]
    found = [f"{path.relative_to(root).as_posix()}:{line} {name}"
             for folder in ("retrofit", "adapters", "scripts", "benchmarks", "examples", "tests")
             for path in sorted(root.joinpath(folder).rglob("*.py"))
             for line, name in identifiers(ast.parse(path.read_text()))
             if "kappa" in name.lower()]
    assert not found, f"name κ cost_threshold (cost_thresholds for several): {found}"


def normalized_cost_tests(tree: ast.AST) -> list[int]:
    """Lines of ``tree`` where a normalised cost is ordered against something by hand."""
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Compare)
            and any(isinstance(op, ast.Lt | ast.LtE | ast.Gt | ast.GtE) for op in node.ops)
            and any("normalized_cost" in n or "norm_cost" in n
                    for side in (node.left, *node.comparators) for n in _names(side))]


def test_the_scan_finds_a_hand_written_policy_criterion() -> None:
    source = "ok = result.normalized_cost <= 1.0\nsafe = norm_cost.mean() < 1\nn = steps > 1"
    assert normalized_cost_tests(ast.parse(source)) == [1, 2]


def test_no_module_tests_the_policy_criterion_by_hand() -> None:
    """Reports, scripts and benchmarks ask :func:`is_safe_on_average`, never ``<= 1`` inline."""
    root = Path(__file__).resolve().parents[1]
    found = [f"{path.relative_to(root).as_posix()}:{line}"
             for folder in ("retrofit", "adapters", "scripts", "benchmarks", "examples")
             for path in sorted(root.joinpath(folder).rglob("*.py"))
             if path.name != "thresholds.py"
             for line in normalized_cost_tests(ast.parse(path.read_text()))]
    assert not found, f"hand-written normalised-cost tests (use is_safe_on_average): {found}"
