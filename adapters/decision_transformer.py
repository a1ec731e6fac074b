"""Adapter for retrofit's ``DecisionTransformer`` (CDT): a policy with memory.

A decision transformer's action depends on its context window — the last ``K`` states, actions,
returns-to-go and costs-to-go of the episode — not on the current observation alone. The adapter
keeps one window per evaluation slot and offers the optional memory hooks of the
``PolicyAdapter`` contract (``adapters/base.py``), which :func:`retrofit.evaluate` calls:

- ``reset(slot)`` at the start of every episode run in ``slot``: the window empties, the
  return-to-go becomes the module's ``target_return`` and the cost-to-go its ``target_cost``;
- ``act(obs_batch)``: row ``k`` of the batch is slot ``k``'s observation;
- ``observe(rewards, costs)`` after every step, aligned with the last ``act`` batch:
  ``R̂ ← R̂ − r`` and ``Ĉ ← Ĉ − c`` (CDT §4.3). A Safe-RLHF (CDT) module counts its own learned
  rewards and costs of the steps it took instead (``module.step_values``), in the units it was
  trained on;
- ``retire(slot)`` when a slot has no episode left (later slots move down by one).

``act`` without ``reset`` starts fresh windows for the rows it has not seen (one slot per row).

What it cannot do: a per-state likelihood ``log π(a|s)`` does not exist for it, so the
fine-tuning methods (PREFINE, DPO, PPL, PreSa and its variants, SafeDICE from a policy) raise a
``PolicyError``; ``Retrofitter(cdt_policy, method="cdt")`` (or ``"bc-safe"``, ``"cpq"``, ...)
trains a new policy with the same observation and action spaces instead.
"""

from __future__ import annotations

from typing import Any, NoReturn

import numpy as np
import torch

from retrofit.adapters.module_adapter import ModuleAdapter
from retrofit.adapters.registry import register_adapter
from retrofit.errors import PolicyError
from retrofit.policies.decision_transformer import DecisionTransformer


def _no_likelihood(what: str) -> NoReturn:
    raise PolicyError(
        f"{what}: a decision transformer (CDT) acts on a context window of past returns-to-go, "
        "costs-to-go, states and actions, so it has no per-state log π(a|s) and cannot be "
        "fine-tuned by PREFINE, DPO, PPL, PreSa or SafeDICE. Retrain it with "
        "Retrofitter(policy, method='cdt') (or 'safe-rlhf-cdt'), or fine-tune an MLP policy "
        "(e.g. one from method='bc-safe')."
    )


class CDTAdapter(ModuleAdapter):
    """``PolicyAdapter`` over a ``DecisionTransformer``, with the memory hooks; ``export()``
    returns the module (spaces, device, ``to``/``train``/``export`` as every module adapter)."""

    module: DecisionTransformer
    stateful = True

    def __init__(self, module: DecisionTransformer) -> None:
        super().__init__(module)
        self._slots: list[dict[str, list[Any]]] = []

    # ------------------------------------------------------------------ contract
    def log_prob(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Not defined for a policy with memory: raises ``PolicyError``."""
        _no_likelihood("log_prob")

    def log_prob_and_sample(self, obs: torch.Tensor, act: torch.Tensor) -> NoReturn:
        """Not defined for a policy with memory: raises ``PolicyError``."""
        _no_likelihood("log_prob_and_sample")

    def sample(self, obs: torch.Tensor) -> NoReturn:
        """Not defined without a context window: raises ``PolicyError`` (use ``act``)."""
        _no_likelihood("sample")

    def mean_action(self, obs: torch.Tensor) -> NoReturn:
        """Not defined without a context window: raises ``PolicyError`` (use ``act``)."""
        _no_likelihood("mean_action")

    def deterministic_action(self, obs: torch.Tensor) -> NoReturn:
        """Not defined without a context window: raises ``PolicyError`` (use ``act``)."""
        _no_likelihood("deterministic_action")

    def trainable_copy(self) -> NoReturn:
        """Raises ``PolicyError``: the fine-tuning methods cannot train a decision transformer."""
        _no_likelihood("fine-tuning (trainable_copy)")

    def frozen_copy(self) -> NoReturn:
        """Raises ``PolicyError``: no fine-tuning method can use it as a reference."""
        _no_likelihood("a frozen reference (frozen_copy)")

    # ------------------------------------------------------------------ memory hooks
    def reset(self, slot: int = 0) -> None:
        """Start a new episode in ``slot``: empty window, targets from the module's buffers."""
        while len(self._slots) <= slot:
            self._slots.append({})
        self._slots[slot] = {
            "obs": [], "act": [],
            "rtg": [float(self.module.target_return)], "ctg": [float(self.module.target_cost)],
        }

    def retire(self, slot: int) -> None:
        """Drop ``slot``; the slots after it move down by one."""
        del self._slots[slot]

    def observe(self, rewards: Any, costs: Any) -> None:
        """After a step of every slot of the last ``act`` batch: lower the to-go sums."""
        rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
        costs = np.asarray(costs, dtype=np.float64).reshape(-1)
        values = self.module.step_values
        if values is not None:  # learned units (Safe-RLHF (CDT))
            obs = torch.as_tensor(np.stack([s["obs"][-1] for s in self._slots[:len(rewards)]]),
                                  device=self.device)
            act = torch.as_tensor(np.stack([s["act"][-1] for s in self._slots[:len(rewards)]]),
                                  device=self.device)
            with torch.no_grad():
                r, c = values(obs, act)
            rewards, costs = r.cpu().double().numpy(), c.cpu().double().numpy()
        for k in range(len(rewards)):
            slot = self._slots[k]
            slot["rtg"].append(slot["rtg"][-1] - rewards[k])
            slot["ctg"].append(slot["ctg"][-1] - costs[k])

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions for slots ``0..n-1`` given their current observations ``(n, observation_dim)``.

        Each slot's window is its last ``K`` steps; ``deterministic=False`` samples the squashed
        Gaussian instead of taking ``centre + half·tanh(mean)``.
        """
        obs = np.asarray(obs, dtype=np.float32).reshape(-1, self.observation_dim)
        n = len(obs)
        for k in range(len(self._slots), n):
            self.reset(k)
        m = self.module
        k_ctx = m.context
        windows = []
        for k in range(n):
            slot = self._slots[k]
            slot["obs"].append(obs[k])
            t = len(slot["obs"])
            lo = max(0, t - k_ctx)
            acts = slot["act"][lo:] + [np.zeros(self.action_dim, dtype=np.float32)]
            windows.append((slot["rtg"][lo:t], slot["ctg"][lo:t], slot["obs"][lo:t], acts,
                            list(range(lo, t))))
        length = max(len(w[2]) for w in windows)

        def pad(rows: list[Any], shape: tuple[int, ...]) -> np.ndarray:
            out = np.zeros((length, *shape), dtype=np.float32)
            out[:len(rows)] = np.asarray(rows, dtype=np.float32).reshape(len(rows), *shape)
            return out

        dev = self.device
        rtg = torch.as_tensor(np.stack([pad(w[0], ()) for w in windows]), device=dev)
        ctg = torch.as_tensor(np.stack([pad(w[1], ()) for w in windows]), device=dev)
        ob = torch.as_tensor(np.stack([pad(w[2], (self.observation_dim,)) for w in windows]),
                             device=dev)
        ac = torch.as_tensor(np.stack([pad(w[3], (self.action_dim,)) for w in windows]),
                             device=dev)
        ts = torch.as_tensor(np.stack([pad(w[4], ()) for w in windows]), device=dev).long()
        last = torch.as_tensor([len(w[2]) - 1 for w in windows], device=dev)
        with torch.no_grad():
            mean, log_std, _ = m(rtg * m.reward_scale, ctg * m.cost_scale, ob, ac, ts)
            rows = torch.arange(n, device=dev)
            mean, log_std = mean[rows, last], log_std[rows, last]
            u = mean if deterministic else mean + log_std.exp() * torch.randn_like(mean)
            action = m.squash(u).cpu().numpy()
        for k in range(n):
            self._slots[k]["act"].append(action[k].astype(np.float32))
        return action


register_adapter(
    "retrofit.policies.decision_transformer.DecisionTransformer (CDT; a policy with memory)",
    lambda obj: isinstance(obj, DecisionTransformer), CDTAdapter,  # type: ignore[arg-type]
)
