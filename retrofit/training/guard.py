"""The finite-value guard of the training loop: a NaN or infinite loss or parameter stops
training with a named error instead of returning (or saving) a broken policy.

Checked each step: the metrics named ``loss`` or ``loss/...`` (every method logs its objective
and its terms so); other metrics may be NaN on purpose (e.g. a mean over an empty class).
Parameters are checked at every checkpoint and at the end of a fit.

On CPU every step is checked (one small reduction); on CUDA the check is folded into a device
flag and read every ``every`` steps, so the loop adds no per-step host synchronisation.

Batched runs (:mod:`retrofit.training.batched`) log each metric as a vector with one entry per
run; a guard given the runs' names (``members``) names the run whose value is not finite.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from retrofit.errors import TrainingError

HINT = (
    "Try a smaller learning rate, check the data for extreme values, or check that the policy's "
    "log-likelihood of the dataset actions is finite (actions on the bounds of a squashed policy)."
)


class FiniteGuard:
    """Watches each step's metrics; ``observe`` raises ``TrainingError`` on a non-finite value."""

    def __init__(self, device: torch.device, every: int | None = None,
                 members: Sequence[str] | None = None) -> None:
        self.every = every if every is not None else (1 if device.type == "cpu" else 100)
        self.members = list(members) if members is not None else None
        self._pending: list[tuple[int, dict[str, torch.Tensor]]] = []

    def observe(self, step: int, metrics: dict[str, torch.Tensor], stage: str) -> None:
        """Record ``step``'s losses; check them now or at the next multiple of ``every``."""
        losses = {k: v for k, v in metrics.items() if k == "loss" or k.startswith("loss/")}
        self._pending.append((step, losses or metrics))
        if len(self._pending) >= self.every:
            self.check(stage)

    def check(self, stage: str) -> None:
        """Check every pending step (one host transfer); raise on the first non-finite one."""
        if not self._pending:
            return
        flags = torch.stack([
            torch.stack([v.detach().float().isfinite().all() for v in m.values()]).all()
            if m else torch.ones((), dtype=torch.bool)
            for _, m in self._pending
        ])
        if bool(flags.all()):
            self._pending.clear()
            return
        first = int((~flags).nonzero()[0, 0])
        step, metrics = self._pending[first]
        bad = [self._named(k, v) for k, v in metrics.items()
               if not bool(torch.isfinite(v.detach()).all())]
        self._pending.clear()
        raise TrainingError(
            f"training diverged at step {step} ({stage}): non-finite {', '.join(bad)}. "
            f"Nothing was returned or saved from this step on. {HINT}"
        )


    def _named(self, key: str, value: torch.Tensor) -> str:
        """``key``, or ``key`` of each run whose entry is not finite (batched runs)."""
        if self.members is None or value.dim() == 0 or len(value) != len(self.members):
            return key
        finite = torch.isfinite(value.detach().reshape(len(self.members), -1)).all(-1)
        return ", ".join(f"{key} of {self.members[i]}" for i in (~finite).nonzero()[:, 0].tolist())


def check_parameters(named: Iterable[tuple[str, torch.Tensor]], where: str) -> None:
    """Raise ``TrainingError`` if any parameter is NaN or infinite (``where`` names the moment)."""
    bad = [name for name, p in named if not bool(torch.isfinite(p.detach()).all())]
    if bad:
        raise TrainingError(
            f"non-finite parameters {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''} "
            f"{where}: the policy is not returned or saved. {HINT}"
        )
