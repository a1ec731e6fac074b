"""An exponential moving average of a policy's weights, returned instead of the last step's.

A long fine-tuning run can end on a bad step: on CarRun (κ 20, seed 0) PREFINE's last weights
after 100 000 updates at lr 3e-5 scored 0.448 normalised reward while the average of its weights
scored 0.873 (``docs/results/retrofit-vs-scratch/summary.md``). The average is Polyak's (Polyak &
Juditsky, 1992) in its exponential form, ``w̄ ← d·w̄ + (1 − d)·w`` after every step, computed with
``torch.optim.swa_utils.get_ema_multi_avg_fn``; the first update copies the weights (as
``torch.optim.swa_utils.AveragedModel`` does). It is an ``nn.Module`` of buffers, so trainer
checkpoints save and resume it with the rest of the trainer's state.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.optim.swa_utils import get_ema_multi_avg_fn

from retrofit.errors import ConfigError


class WeightAverage(nn.Module):
    """The exponential moving average (decay ``decay``) of a fixed list of parameters."""

    def __init__(self, parameters: Sequence[torch.Tensor], decay: float) -> None:
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ConfigError(f"weight_average_decay={decay} must be in (0, 1) (0 turns the "
                              "average off; 0.999 averages over roughly the last 1000 steps).")
        self.decay = float(decay)
        self._update = get_ema_multi_avg_fn(self.decay)
        for i, p in enumerate(parameters):
            self.register_buffer(f"average_{i}", p.detach().clone())
        self.register_buffer("n_averaged", torch.zeros((), dtype=torch.long))
        self.count = len(parameters)

    def averages(self) -> list[torch.Tensor]:
        """The averaged tensors, in the order of the parameters given at construction."""
        return [getattr(self, f"average_{i}") for i in range(self.count)]

    @torch.no_grad()
    def update(self, parameters: Sequence[torch.Tensor]) -> None:
        """Fold the current ``parameters`` into the average (the first call copies them)."""
        current = [p.detach() for p in parameters]
        if len(current) != self.count:
            raise ValueError(f"{len(current)} parameters given; the average holds {self.count}.")
        averages = self.averages()
        if int(self.n_averaged) == 0:
            for average, p in zip(averages, current, strict=True):
                average.copy_(p)
        else:
            self._update(averages, current, self.n_averaged.to(current[0].device))
        self.n_averaged += 1

    @torch.no_grad()
    def copy_to(self, parameters: Sequence[torch.Tensor]) -> None:
        """Overwrite ``parameters`` in place with the average (nothing happens before an update)."""
        if int(self.n_averaged) == 0:
            return
        for p, average in zip(parameters, self.averages(), strict=True):
            p.copy_(average)
