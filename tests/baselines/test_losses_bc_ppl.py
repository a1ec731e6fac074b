"""BC's MSE and PPL's Bradley–Terry loss by hand."""

import math

import pytest
import torch

from retrofit.losses.bc import bc_mse_loss
from retrofit.losses.bradley_terry import bradley_terry_loss
from retrofit.losses.ppl import segment_scores


def test_bc_mse():
    loss, _ = bc_mse_loss(torch.tensor([[1.0, 2.0]]), torch.zeros(1, 2))
    assert loss.item() == pytest.approx(2.5)


def test_segment_scores_and_bradley_terry():
    scores = segment_scores(torch.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, -2.0]]), alpha=0.1)
    assert torch.allclose(scores, torch.tensor([0.6, -0.3]))
    loss, metrics = bradley_terry_loss(torch.tensor([1.0]), torch.tensor([0.0]))
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1.0)))
    assert metrics["rewards/accuracies"].item() == 1.0
