"""PREFINE's averaged weights: the formula by hand, the trainer's returned policy, resume."""

from pathlib import Path

import numpy as np
import pytest
import torch

from retrofit.adapters import wrap
from retrofit.errors import ConfigError
from retrofit.methods.prefine import PrefineConfig, PrefineTrainer
from retrofit.methods.prefine_batched import PrefineRun, fit_prefine_batched
from retrofit.policies.clipped_gaussian import ClippedGaussianPolicy
from retrofit.training.weight_average import WeightAverage
from tests.test_prefine_trainer import _data


def test_average_by_hand() -> None:
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    average = WeightAverage([p], decay=0.9)
    average.update([p])  # the first update copies
    assert average.averages()[0].tolist() == [1.0, -2.0]
    with torch.no_grad():
        p.copy_(torch.tensor([3.0, 0.0]))
    average.update([p])  # 0.9 * 1 + 0.1 * 3 = 1.2; 0.9 * -2 + 0.1 * 0 = -1.8
    assert torch.allclose(average.averages()[0], torch.tensor([1.2, -1.8]))
    with torch.no_grad():
        p.copy_(torch.tensor([0.0, 0.0]))
    average.update([p])  # 0.9 * 1.2 = 1.08; 0.9 * -1.8 = -1.62
    average.copy_to([p])
    assert torch.allclose(p.detach(), torch.tensor([1.08, -1.62]))
    assert int(average.n_averaged) == 3


@pytest.mark.parametrize("decay", [-0.1, 1.0, 1.5])
def test_decay_out_of_range_is_refused(decay: float) -> None:
    with pytest.raises(ConfigError, match="weight_average_decay"):
        PrefineConfig(weight_average_decay=decay)


def _policy() -> ClippedGaussianPolicy:
    torch.manual_seed(0)
    return ClippedGaussianPolicy(4, 2, -np.ones(2), np.ones(2), hidden_sizes=(16, 16),
                                 fixed_std=0.2)


def _config(decay: float) -> PrefineConfig:
    return PrefineConfig(beta=0.2, sft_weight=0.3, learning_rate=1e-2, batch_size=16,
                         weight_average_decay=decay)


@pytest.fixture
def pairs(rng):
    return _data(rng, 8, 20, 0.5), _data(rng, 4, 20, -0.5)


def test_returned_policy_is_the_average_of_the_steps_weights(pairs) -> None:
    decay = 0.8
    trainer = PrefineTrainer(wrap(_policy()), _config(decay), device="cpu")
    seen: list[list[torch.Tensor]] = []

    def record(step: int, t: PrefineTrainer) -> None:
        seen.append([p.detach().clone() for p in t.trainable_parameters()])

    returned = trainer.fit(*pairs, steps=6, progress=False, callback=record, callback_every=1)
    expected = seen[0]
    for weights in seen[1:]:
        expected = [decay * e + (1 - decay) * w for e, w in zip(expected, weights, strict=True)]
    got = [p.detach() for p in returned.parameters() if p.requires_grad]
    for e, g in zip(expected, got, strict=True):
        assert torch.allclose(e, g, atol=1e-6)
    # the last step's weights differ from the average: the average is what is returned
    assert not all(torch.allclose(w, g) for w, g in zip(seen[-1], got, strict=True))
    # the same seed without averaging ends on the last weights seen above
    plain = PrefineTrainer(wrap(_policy()), _config(0.0), device="cpu").fit(
        *pairs, steps=6, progress=False)
    for w, g in zip(seen[-1], [p for p in plain.parameters() if p.requires_grad], strict=True):
        assert torch.equal(w, g.detach())


class Stop(Exception):
    pass


def test_resume_keeps_the_average(pairs, tmp_path: Path) -> None:
    whole = PrefineTrainer(wrap(_policy()), _config(0.9), device="cpu").fit(
        *pairs, steps=8, progress=False)

    def crash(step: int, _: object) -> None:
        if step >= 5:
            raise Stop

    with pytest.raises(Stop):
        PrefineTrainer(wrap(_policy()), _config(0.9), device="cpu").fit(
            *pairs, steps=8, progress=False, callback=crash, callback_every=1,
            checkpoint_dir=tmp_path, checkpoint_every=2)
    resumed = PrefineTrainer(wrap(_policy()), _config(0.9), device="cpu").fit(
        *pairs, steps=8, progress=False, checkpoint_dir=tmp_path, checkpoint_every=2,
        resume=True)
    for a, b in zip(whole.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)
    # a checkpoint without averaging does not resume into an averaged run
    with pytest.raises(ConfigError, match="weight_average_decay"):
        PrefineTrainer(wrap(_policy()), _config(0.0), device="cpu").fit(
            *pairs, steps=8, progress=False, checkpoint_dir=tmp_path, resume=True)


def test_run_record_leaves_the_field_out_at_its_old_value() -> None:
    assert "weight_average_decay" not in _config(0.0).recorded_settings()
    assert _config(0.999).recorded_settings()["weight_average_decay"] == 0.999


def test_batched_runs_average_as_separate_runs(pairs) -> None:
    """The average is elementwise, so the stacked weights' average is each run's own."""
    policy = wrap(_policy())
    batched = fit_prefine_batched(policy, [PrefineRun(*pairs, seed=0), PrefineRun(*pairs, seed=1)],
                                  _config(0.5), steps=6, device="cpu", progress=False)
    for seed, member in enumerate(batched):
        separate = PrefineTrainer(policy, _config(0.5), device="cpu", seed=seed).fit(
            *pairs, steps=6, progress=False)
        for a, b in zip(separate.parameters(), member.parameters(), strict=True):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
