"""Batched PREFINE runs (seeds × thresholds as one model) equal separate runs with the same seed."""

import pytest
import torch

from retrofit.adapters import wrap
from retrofit.data.dataset import TrajectoryDataset, action_bounds
from retrofit.data.shipped import default_dataset_path
from retrofit.errors import ConfigError
from retrofit.methods.prefine import PrefineConfig, PrefineTrainer
from retrofit.methods.prefine_batched import PrefineRun, fit_prefine_batched
from retrofit.policies.clipped_gaussian import ClippedGaussianPolicy
from retrofit.policies.deterministic import DeterministicPolicy
from retrofit.policies.gaussian import TanhGaussianPolicy

TASK = "OfflineBallRun-v0"


@pytest.fixture(scope="module")
def dataset() -> TrajectoryDataset:
    return TrajectoryDataset.from_hdf5(default_dataset_path(TASK), task=TASK)


@pytest.fixture(scope="module")
def runs(dataset) -> list[PrefineRun]:
    out = []
    for cost_threshold, seed in [(10, 0), (20, 1), (40, 1)]:  # two thresholds share a seed
        preferred, nonpreferred = dataset.split_preferences(cost_threshold=cost_threshold,
                                                            seed=seed)
        out.append(PrefineRun(preferred, nonpreferred, seed))
    return out


def _reference(dataset, kind: str):
    torch.manual_seed(0)
    box = (dataset.observation_dim, dataset.action_dim, *action_bounds(dataset))
    if kind == "clipped-fixed":
        return wrap(ClippedGaussianPolicy(*box, hidden_sizes=(32, 32), fixed_std=0.2))
    if kind == "clipped":
        return wrap(ClippedGaussianPolicy(*box, hidden_sizes=(32, 32)))
    return wrap(TanhGaussianPolicy(*box, hidden_sizes=(32, 32)))


@pytest.mark.parametrize("kind,precompute", [
    ("clipped-fixed", True), ("clipped", False), ("tanh", True),
])
def test_batched_runs_equal_separate_runs(dataset, runs, kind, precompute):
    reference = _reference(dataset, kind)
    # A.4's learning rate, so 25 steps move the weights measurably (the check below).
    config = PrefineConfig(steps=25, batch_size=32, learning_rate=3e-4,
                           precompute_reference=precompute).resolved("bullet")
    batched = fit_prefine_batched(reference, runs, config, device="cpu")
    start = [p.detach().clone() for p in reference.module.parameters()]
    finals = []
    for run, member in zip(runs, batched, strict=True):
        trainer = PrefineTrainer(reference, config, device="cpu", seed=run.seed)
        separate = trainer.fit(run.preferred, run.nonpreferred, progress=False)
        for a, b in zip(separate.module.parameters(), member.module.parameters(), strict=True):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
        assert not member.module.training
        finals.append(torch.cat([p.flatten() for p in member.module.parameters()]))
    # each run trained (moved from π_ref) and the runs differ (own data, own seed)
    flat_start = torch.cat([p.flatten() for p in start])
    assert all((f - flat_start).abs().max() > 1e-3 for f in finals)
    assert (finals[0] - finals[1]).abs().max() > 1e-4
    assert (finals[1] - finals[2]).abs().max() > 1e-4  # same seed, other κ


def test_batched_runs_log_each_runs_metrics(dataset, runs):
    class Keep:
        def __init__(self):
            self.rows, self.steps, self.closed = [], [], False

        def log(self, step, metrics):
            self.steps.append(step)
            self.rows.append({k: float(v) for k, v in metrics.items()})

        def close(self):
            self.closed = True

    loggers = [Keep() for _ in runs]
    config = PrefineConfig(steps=5, batch_size=16).resolved("bullet")
    fit_prefine_batched(_reference(dataset, "clipped-fixed"), runs, config, device="cpu",
                        loggers=loggers)
    assert all(len(k.rows) == 5 and k.closed for k in loggers)
    # the same step labels as a single run's training loop: 1 … steps (issue 23)
    assert all(k.steps == [1, 2, 3, 4, 5] for k in loggers)
    assert loggers[0].rows[0]["loss"] != loggers[1].rows[0]["loss"]
    assert {"loss/dpo_preferred", "accuracy/nonpreferred"} <= set(loggers[0].rows[0])


def test_batched_runs_refuse_what_they_cannot_do(dataset, runs):
    config = PrefineConfig(steps=2, batch_size=8).resolved("bullet")
    reference = _reference(dataset, "clipped-fixed")
    with pytest.raises(ConfigError, match="sampling='transitions'"):
        fit_prefine_batched(reference, runs,
                            PrefineConfig(steps=2, batch_size=2,
                                          sampling="trajectories").resolved("bullet"),
                            device="cpu")
    with pytest.raises(ConfigError, match="one per run"):
        fit_prefine_batched(reference, runs, config, device="cpu", loggers=[None])
    with pytest.raises(ConfigError, match="at least one"):
        fit_prefine_batched(reference, [], config, device="cpu")
    deterministic = wrap(DeterministicPolicy(dataset.observation_dim, dataset.action_dim,
                                             *action_bounds(dataset), hidden_sizes=(8,)))
    with pytest.raises(ConfigError, match="closed form"):
        fit_prefine_batched(deterministic, runs[:1], config, device="cpu")


def test_a_non_finite_loss_stops_the_batch_naming_the_run(dataset, runs):
    from retrofit.errors import TrainingError

    reference = _reference(dataset, "clipped-fixed")
    with torch.no_grad():
        reference.module.mean_head.bias.fill_(float("nan"))
    config = PrefineConfig(steps=3, batch_size=8).resolved("bullet")
    with pytest.raises(TrainingError, match=r"loss of run0 \(seed 0\)"):
        fit_prefine_batched(reference, runs, config, device="cpu")


@pytest.fixture(scope="module")
def two_seeds(dataset) -> list[PrefineRun]:
    return [PrefineRun(*dataset.split_preferences(cost_threshold=20, seed=seed), seed)
            for seed in (0, 1)]


def _weights(policies) -> list[list[torch.Tensor]]:
    return [[p.detach().clone() for p in policy.parameters()] for policy in policies]


def test_an_interrupted_batch_resumes_to_the_uninterrupted_one(dataset, two_seeds, tmp_path):
    """Issue 23: the batch checkpoints and resumes as a single run does, bit for bit."""
    reference = _reference(dataset, "clipped-fixed")
    config = PrefineConfig(steps=8, batch_size=16, learning_rate=3e-4).resolved("bullet")
    whole = _weights(fit_prefine_batched(reference, two_seeds, config, device="cpu",
                                         progress=False))

    def crash(step, trainer):
        if step == 6:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        fit_prefine_batched(reference, two_seeds, config, device="cpu", progress=False,
                            checkpoint_dir=tmp_path, checkpoint_every=4,
                            callbacks=[crash, crash], callback_every=1)
    from retrofit.training.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path / "checkpoint.pt")["position"]["steps_done"] == 4
    seen = []
    resumed = fit_prefine_batched(
        reference, two_seeds, config, device="cpu", progress=False, checkpoint_dir=tmp_path,
        resume=True, callbacks=[lambda s, t: seen.append((s, t.seed, t.steps_done))] * 2,
        callback_every=2)
    for a, b in zip(whole, _weights(resumed), strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    # callbacks: one per run, at steps 6 and 8, each with its own run's trainer
    assert seen == [(6, 0, 6), (6, 1, 6), (8, 0, 8), (8, 1, 8)]
    # a changed batch is refused, naming what changed
    other = [two_seeds[0], PrefineRun(two_seeds[1].preferred, two_seeds[1].nonpreferred, 2)]
    with pytest.raises(ConfigError, match=r"seed: \[0, 1\] -> \[0, 2\]"):
        fit_prefine_batched(reference, other, config, device="cpu", progress=False,
                            checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(ConfigError, match="beta"):
        fit_prefine_batched(reference, two_seeds, PrefineConfig(
            steps=8, batch_size=16, learning_rate=3e-4, beta=0.5).resolved("bullet"),
            device="cpu", progress=False, checkpoint_dir=tmp_path, resume=True)


def test_callbacks_see_each_runs_current_weights_and_can_stop_the_batch(dataset, two_seeds):
    reference = _reference(dataset, "clipped-fixed")
    config = PrefineConfig(steps=10, batch_size=16, learning_rate=3e-4).resolved("bullet")
    snapshots: dict[int, list[torch.Tensor]] = {}

    def keep(step, trainer):
        snapshots[trainer.seed] = [p.detach().clone() for p in trainer.policy.parameters()]
        return step == 4 and trainer.seed == 1  # one run asks to stop: the batch stops

    policies = fit_prefine_batched(reference, two_seeds, config, device="cpu", progress=False,
                                   callbacks=[keep, keep], callback_every=2)
    for seed, policy in enumerate(policies):
        assert all(torch.equal(a, b) for a, b in zip(snapshots[seed], policy.parameters(),
                                                     strict=True))
    # four steps of a separate run: the same weights up to rounding
    separate = PrefineTrainer(reference, config, device="cpu", seed=1).fit(
        two_seeds[1].preferred, two_seeds[1].nonpreferred, steps=4, progress=False)
    for a, b in zip(separate.parameters(), policies[1].parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_runs_with_their_own_references_equal_separate_runs(dataset, two_seeds):
    """`retrofit compare` trains one π_ref per seed: each run starts from its own."""
    own = [_reference(dataset, "clipped-fixed")]
    torch.manual_seed(1)
    box = (dataset.observation_dim, dataset.action_dim, *action_bounds(dataset))
    own.append(wrap(ClippedGaussianPolicy(*box, hidden_sizes=(32, 32), fixed_std=0.2)))
    runs = [PrefineRun(r.preferred, r.nonpreferred, r.seed, reference)
            for r, reference in zip(two_seeds, own, strict=True)]
    config = PrefineConfig(steps=5, batch_size=16, learning_rate=3e-4).resolved("bullet")
    batched = fit_prefine_batched(None, runs, config, device="cpu", progress=False)
    for run, member in zip(runs, batched, strict=True):
        separate = PrefineTrainer(run.reference, config, device="cpu", seed=run.seed).fit(
            run.preferred, run.nonpreferred, progress=False)
        for a, b in zip(separate.parameters(), member.parameters(), strict=True):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="precompute_reference=True"):
        fit_prefine_batched(None, runs, PrefineConfig(
            steps=2, batch_size=8, precompute_reference=False).resolved("bullet"), device="cpu")
