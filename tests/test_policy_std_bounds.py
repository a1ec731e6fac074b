"""The spread bounds of the stochastic policies: one definition per family, applied by each user."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from retrofit.policies.std_bounds import (
    CLIPPED_GAUSSIAN_MIN_STD,
    TANH_GAUSSIAN_LOG_STD,
    VAE_ENCODER_LOG_STD,
    LogStdBounds,
)

OBS, ACT = 3, 2
LOW, HIGH = -np.ones(ACT), np.ones(ACT)


def test_the_values_trained_results_were_made_with() -> None:
    """Changing one of these changes every result trained with it: do it here, on purpose."""
    assert (TANH_GAUSSIAN_LOG_STD.low, TANH_GAUSSIAN_LOG_STD.high) == (-5.0, 2.0)
    assert (VAE_ENCODER_LOG_STD.low, VAE_ENCODER_LOG_STD.high) == (-4.0, 15.0)
    assert CLIPPED_GAUSSIAN_MIN_STD == 0.05


def test_clamp_is_closed_at_both_ends() -> None:
    bounds = LogStdBounds(-1.0, 1.0)
    out = bounds.clamp(torch.tensor([-3.0, -1.0, 0.5, 1.0, 3.0]))
    assert out.tolist() == [-1.0, -1.0, 0.5, 1.0, 1.0]


def _saturate(head: nn.Linear, bias: float) -> None:
    """Make ``head`` output ``bias`` whatever its input."""
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(bias)


def tanh_gaussian(bias: float) -> torch.Tensor:
    from retrofit.policies.gaussian import TanhGaussianPolicy

    policy = TanhGaussianPolicy(OBS, ACT, LOW, HIGH, hidden_sizes=(8,))
    _saturate(policy.log_std_head, bias)
    return policy(torch.zeros(4, OBS))[1]


def decision_transformer(bias: float) -> torch.Tensor:
    from retrofit.policies.decision_transformer import DecisionTransformer

    model = DecisionTransformer(OBS, ACT, -1.0, 1.0, max_episode_steps=10, embedding_dim=8,
                                layers=1, heads=1, context=3, dropout=0.0)
    _saturate(model.action_log_std, bias)
    k = 3
    inputs = (torch.zeros(1, k), torch.zeros(1, k), torch.zeros(1, k, OBS),
              torch.zeros(1, k, ACT), torch.arange(k)[None])
    return model(*inputs)[1]


def vae_policy(bias: float) -> torch.Tensor:
    from retrofit.policies.vae import VAEPolicy

    policy = VAEPolicy(OBS, ACT, LOW, HIGH, hidden_sizes=(8,))
    _saturate(policy.enc_log_std, bias)
    return policy.encode(torch.zeros(4, OBS), torch.zeros(4, ACT))[1]


def cpq_action_vae(bias: float) -> torch.Tensor:
    from retrofit.methods.cpq import ActionVAE

    vae = ActionVAE(OBS, ACT, 8, LOW, HIGH, np.zeros(OBS), np.ones(OBS))
    _saturate(vae.log_std, bias)
    return vae.encode(torch.zeros(4, OBS), torch.zeros(4, ACT))[1].log()


USERS: list[tuple[Callable[[float], torch.Tensor], LogStdBounds]] = [
    (tanh_gaussian, TANH_GAUSSIAN_LOG_STD),
    (decision_transformer, TANH_GAUSSIAN_LOG_STD),
    (vae_policy, VAE_ENCODER_LOG_STD),
    (cpq_action_vae, VAE_ENCODER_LOG_STD),
]


@pytest.mark.parametrize(("log_std_of", "bounds"), USERS, ids=lambda u: getattr(u, "__name__", ""))
def test_every_network_clamps_log_std_to_its_family_bounds(
    log_std_of: Callable[[float], torch.Tensor], bounds: LogStdBounds
) -> None:
    assert torch.allclose(log_std_of(-100.0), torch.tensor(bounds.low))
    assert torch.allclose(log_std_of(100.0), torch.tensor(bounds.high))
    assert torch.allclose(log_std_of(0.25), torch.tensor(0.25))  # inside: untouched


def test_clipped_gaussian_spread_floor_is_one_default() -> None:
    from retrofit.policies.clipped_gaussian import ClippedGaussianPolicy
    from retrofit.pretrain import BCConfig

    policy = ClippedGaussianPolicy(OBS, ACT, LOW, HIGH, hidden_sizes=(8,))
    _saturate(policy.std_head, -100.0)  # softplus(-100) ≈ 0: the spread sits on its floor
    spread = policy(torch.zeros(4, OBS))[1]
    assert policy.min_std == BCConfig().min_std == CLIPPED_GAUSSIAN_MIN_STD
    assert torch.allclose(spread, torch.tensor(CLIPPED_GAUSSIAN_MIN_STD))


def clamps_a_log_std(node: ast.AST) -> bool:
    """``<…log_std…>.clamp(…)`` or ``torch.clamp(<…log_std…>, …)``."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "clamp"):
        return False
    receiver = ast.unparse(node.func.value)
    return "log_std" in receiver or (receiver == "torch" and "log_std" in ast.unparse(node.args))


def test_the_scan_finds_a_hand_written_clamp() -> None:
    source = ("a = self.log_std_head(h).clamp(-5, 2)\nb = torch.clamp(log_std, -20, 2)\n"
              "c = TANH_GAUSSIAN_LOG_STD.clamp(self.log_std_head(h))\nd = x.clamp(0, 1)")
    values = [stmt.value for stmt in ast.parse(source).body if isinstance(stmt, ast.Assign)]
    assert [clamps_a_log_std(v) for v in values] == [True, True, False, False]


def test_no_other_module_bounds_a_spread_by_hand() -> None:
    """No ``LOG_STD``/``MIN_STD`` constant and no ``.clamp`` of a log-std outside std_bounds.py
    (the library's own modules; SB3's and d3rlpy's policies keep their libraries' bounds)."""
    root = Path(__file__).resolve().parents[1]
    found = []
    for path in sorted([*root.joinpath("retrofit").rglob("*.py"),
                        *root.joinpath("adapters").rglob("*.py")]):
        if path.name == "std_bounds.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                names += [e.id for t in node.targets if isinstance(t, ast.Tuple)
                          for e in t.elts if isinstance(e, ast.Name)]
                if any("LOG_STD" in n or "MIN_STD" in n for n in names):
                    found.append(f"{path.relative_to(root)}:{node.lineno} defines {names}")
            elif clamps_a_log_std(node):
                found.append(f"{path.relative_to(root)}:{node.lineno} clamps a log-std")
    assert not found, "spread bounds outside retrofit/policies/std_bounds.py:\n" + "\n".join(found)
