"""PreSa trainer: batching, forward budget, frozen reference, dual ascent, variants, registry."""

import numpy as np
import pytest
import torch

from retrofit import Retrofitter, feedback
from retrofit.adapters import wrap
from retrofit.errors import ConfigError, DataError, PolicyError
from retrofit.methods.presa import (
    PRESA_PRESETS,
    BCSafeSegConfig,
    PresaConfig,
    PresaTrainer,
    SegmentBatcher,
    mean_action_fn,
    presa_reference,
)
from retrofit.methods.registry import available_methods, get_method
from retrofit.policies.gaussian import TanhGaussianPolicy
from tests.feedback.helpers import make_dataset

NAMES = ("presa", "presa-no-zref", "preference-only", "safety-only", "binary-alignment",
         "bc-safe-seg", "unified-comparison", "presa-filtered")


def _policy(seed: int = 0, dropout: float = 0.0) -> TanhGaussianPolicy:
    torch.manual_seed(seed)
    return TanhGaussianPolicy(3, 2, -np.ones(2), np.ones(2), hidden_sizes=(16, 16),
                              dropout=dropout)


@pytest.fixture
def fb():
    data = make_dataset(lengths=(12, 12, 10, 12, 8, 9))
    return feedback.synthesize(data, n_pairs=64, segment_length=4, cost_threshold=20.0,
                               seed=0, max_episode_steps=100)


def _config(**kw) -> PresaConfig:
    return PresaConfig(batch_size=8, steps=5, **kw).resolved("bullet")


def test_presets_are_table_4_but_bulletgym_eta():
    assert PRESA_PRESETS["bullet"]["beta"] == 1.0 and PRESA_PRESETS["safety"]["beta"] == 0.2
    # Table 4: 0.1 / 2.0; BulletGym η = 1 chosen by experiment with the clamped z_ref (issue 14)
    assert PRESA_PRESETS["bullet"]["eta"] == 1.0 and PRESA_PRESETS["safety"]["eta"] == 2.0
    assert PresaConfig().z_ref == "clamped"
    cfg = PresaConfig().resolved("safety")
    assert (cfg.batch_size, cfg.steps, cfg.delta, cfg.nu_learning_rate) == (96, 200_000, 0.9,
                                                                           0.0005)
    assert PresaConfig(alpha=0.4).resolved("bullet").alpha == 0.4
    with pytest.raises(ConfigError):
        PresaConfig(delta=1.5).resolved("bullet")
    with pytest.raises(ConfigError):
        PresaConfig(objective="dpo").resolved("bullet")  # type: ignore[arg-type]


def test_registry_has_every_name():
    assert set(NAMES) <= set(available_methods())
    for name in NAMES:
        trainer_cls, config_cls = get_method(name).load()
        assert trainer_cls is PresaTrainer and issubclass(config_cls, PresaConfig)


def test_batcher_shapes_and_rows(fb):
    batcher = SegmentBatcher(fb, 5, torch.device("cpu"), seed=0)
    obs, act, labels, rows = batcher.sample()
    assert obs.shape == (5, 2, 4, 3) and act.shape == (5, 2, 4, 2) and labels.shape == (5, 2)
    data_obs = torch.as_tensor(fb.dataset.observations)
    assert torch.equal(obs, data_obs[rows])
    assert torch.all(rows[..., 1:] - rows[..., :-1] == 1)
    safe = SegmentBatcher(fb, 5, torch.device("cpu"), safe_only=True)
    _, _, labels, rows = safe.sample()
    assert torch.all(labels == 1)
    safe_starts = set(fb.starts[fb.safety > 0].tolist())
    assert set(rows[..., 0].reshape(-1).tolist()) <= safe_starts


@pytest.mark.parametrize("precompute", [True, False])
def test_one_forward_per_network_per_step(fb, precompute):
    trainer = PresaTrainer(wrap(_policy()), _config(precompute_reference=precompute),
                           device="cpu")
    calls = {"policy": 0, "reference": 0}
    trainer.policy.module.register_forward_hook(
        lambda *_: calls.__setitem__("policy", calls["policy"] + 1))
    trainer.reference.module.register_forward_hook(
        lambda *_: calls.__setitem__("reference", calls["reference"] + 1))
    trainer.fit(fb, steps=6, progress=False)
    # precomputed: the reference scores the whole dataset once (one chunk) and never again
    assert calls == {"policy": 6, "reference": 1 if precompute else 6}


def test_precomputed_reference_gives_the_same_training(fb):
    a = PresaTrainer(wrap(_policy()), _config(precompute_reference=True), device="cpu")
    b = PresaTrainer(wrap(_policy()), _config(precompute_reference=False), device="cpu")
    a.fit(fb, steps=5, progress=False)
    b.fit(fb, steps=5, progress=False)
    for pa, pb in zip(a.policy.parameters(), b.policy.parameters(), strict=True):
        assert torch.allclose(pa, pb, atol=1e-5)


def test_reference_frozen_policy_moves_and_deterministic(fb):
    original = _policy(dropout=0.1)
    before = {k: v.clone() for k, v in original.state_dict().items()}
    runs = []
    for _ in range(2):
        trainer = PresaTrainer(wrap(original), _config(), device="cpu", seed=3)
        trainer.fit(fb, steps=10, progress=False)
        runs.append(trainer)
    for k, v in runs[0].reference.module.state_dict().items():
        assert torch.equal(v, before[k])
    assert not runs[0].reference.module.training
    assert all(not p.requires_grad for p in runs[0].reference.parameters())
    moved = [not torch.equal(p, before[k]) for k, p in runs[0].policy.module.state_dict().items()
             if k.startswith("trunk")]
    assert any(moved)
    for pa, pb in zip(runs[0].policy.parameters(), runs[1].policy.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert runs[0].nu.item() == runs[1].nu.item()


class _Recorder:
    def __init__(self):
        self.rows = []

    def log(self, step, metrics):
        self.rows.append({k: float(v) for k, v in metrics.items()})

    def close(self):
        pass


def test_nu_nonnegative_and_rises_while_violated(fb):
    # δ = 1 can never be met (p < 1), so the constraint stays violated and ν must keep rising
    rec = _Recorder()
    trainer = PresaTrainer(wrap(_policy()), _config(delta=1.0, nu_learning_rate=0.1),
                           device="cpu")
    trainer.fit(fb, steps=15, progress=False, logger=rec)
    nus = [r["nu"] for r in rec.rows]  # ν used at each step (before that step's dual update)
    assert all(r["constraint"] > 0 for r in rec.rows)
    assert nus[0] == 0.0 and all(b > a for a, b in zip(nus, nus[1:], strict=False))
    assert trainer.nu.item() > nus[-1]
    # a constraint that is always met (δ tiny) drives ν to the floor and keeps it there
    rec = _Recorder()
    trainer = PresaTrainer(wrap(_policy()), _config(delta=1e-6, nu_learning_rate=0.5,
                                                    initial_nu=0.3), device="cpu")
    trainer.fit(fb, steps=5, progress=False, logger=rec)
    assert all(r["nu"] >= 0 for r in rec.rows) and trainer.nu.item() == 0.0
    for key in ("constraint", "rewards/accuracies", "safety/accuracy", "nu", "loss"):
        assert key in rec.rows[0]


def test_class_weights_from_eta_on_the_data(fb):
    trainer = PresaTrainer(wrap(_policy()), _config(eta=0.1), device="cpu")
    trainer.fit(fb, steps=1, progress=False)
    assert trainer.lambda_unsafe == 1.0
    assert trainer.lambda_safe * fb.n_safe / fb.n_unsafe == pytest.approx(0.1)


@pytest.mark.parametrize("name", NAMES)
def test_every_method_runs_through_retrofitter(fb, name, tmp_path):
    retro = Retrofitter(_policy(), name, device="cpu", progress=False, log_dir=tmp_path,
                        batch_size=4)
    module = retro.fit(fb, steps=3)
    assert isinstance(module, TanhGaussianPolicy)
    assert retro.trainer.steps_done == 3
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"nu", "constraint", "rewards/accuracies", "safety/accuracy"} <= set(header)


def test_bc_safe_seg_learns_the_safe_actions(fb):
    # BC on safe segments pulls μ(s) towards the safe segments' actions
    trainer = PresaTrainer(wrap(_policy()), BCSafeSegConfig(batch_size=8, learning_rate=1e-2)
                           .resolved("bullet"), device="cpu")
    idx = np.unique(fb.segment_indices()[fb.safety > 0])
    obs = torch.as_tensor(fb.dataset.observations[idx])
    act = torch.as_tensor(fb.dataset.actions[idx])
    mean = mean_action_fn(trainer.policy)
    before = (mean(obs) - act).pow(2).mean().item()
    trainer.fit(fb, steps=150, progress=False)
    trainer.policy.train(False)
    assert (mean(obs) - act).pow(2).mean().item() < 0.5 * before


def test_pretraining_freezes_the_bc_result_as_reference(fb):
    trainer = PresaTrainer(wrap(_policy()), _config(pretrain_steps=5), device="cpu")
    trainer.fit(fb, steps=0, progress=False)
    assert trainer.pretrain_steps_done == 5
    for pr, pp in zip(trainer.reference.parameters(), trainer.policy.parameters(), strict=True):
        assert torch.equal(pr, pp)
    ref = presa_reference(fb, steps=3, domain="bullet", hidden_sizes=(8,),
                          action_low=-np.ones(2), action_high=np.ones(2), device="cpu",
                          progress=False)
    assert isinstance(ref, TanhGaussianPolicy) and ref.dropout == 0.1


def test_adapter_likelihood_and_errors(fb):
    trainer = PresaTrainer(wrap(_policy()), _config(likelihood="adapter"), device="cpu")
    trainer.fit(fb, steps=2, progress=False)

    class NoMean:
        module = None

    with pytest.raises(PolicyError, match="likelihood='adapter'"):
        mean_action_fn(NoMean())  # type: ignore[arg-type]
    with pytest.raises(DataError, match="segment feedback"):
        PresaTrainer(wrap(_policy()), _config(), device="cpu").fit(object(), progress=False)
    with pytest.raises(DataError, match="fit\\(feedback\\)"):
        PresaTrainer(wrap(_policy()), _config(), device="cpu").fit(progress=False)


@pytest.mark.slow
def test_presa_end_to_end_on_the_shipped_dataset(tmp_path):
    from retrofit import TrajectoryDataset, evaluate
    from retrofit.data.shipped import default_dataset_path

    path = default_dataset_path()
    data = TrajectoryDataset.from_hdf5(path, task="OfflineBallRun-v0")
    fb = feedback.synthesize(data, n_pairs=1_000, segment_length=64, cost_threshold=20, seed=0)
    fb = feedback.load(feedback.save(fb, tmp_path / "fb.h5"))
    reference = presa_reference(fb, steps=200, device="cpu", progress=False)
    policy = Retrofitter(reference, "presa", device="cpu", progress=False,
                         log_dir=tmp_path / "presa").fit(fb, steps=200)
    result = evaluate(policy, "OfflineBallRun-v0", 20.0, episodes=2, seed=0)
    assert np.isfinite(result.normalized_reward) and np.isfinite(result.normalized_cost)
    assert (tmp_path / "presa" / "metrics.csv").read_text().count("\n") == 201


def test_callback_runs_off_the_clock_sees_training_mode_and_can_stop(fb):
    seen: list[tuple[int, bool, float]] = []

    def callback(step: int, trainer: PresaTrainer) -> bool:
        seen.append((step, trainer.policy.module.training, trainer.train_wall_clock_s))
        return step == 6

    trainer = PresaTrainer(wrap(_policy(dropout=0.1)), _config(), device="cpu")
    trainer.fit(fb, steps=20, progress=False, callback=callback, callback_every=3)
    assert [s for s, _, _ in seen] == [3, 6] and trainer.steps_done == 6
    assert all(training for _, training, _ in seen)
    assert 0 < seen[0][2] <= seen[1][2] <= trainer.train_wall_clock_s
    assert not trainer.policy.module.training  # fit leaves the policy in evaluation mode
