"""Baselines (spec/methods.md): names, trainers and configs for the method registry."""

from retrofit.methods.registry import MethodSpec

METHODS = [
    MethodSpec(
        "cpq", "retrofit.methods.cpq", "CPQTrainer", "CPQConfig",
        "Constraints Penalized Q-learning on rewards and costs (Xu et al. 2022, OSRL)",
    ),
    MethodSpec(
        "safedice", "retrofit.methods.safedice", "SafeDICETrainer", "SafeDICEConfig",
        "SafeDICE: union data + labelled non-preferred set (Jang et al. 2023)",
    ),
    MethodSpec(
        "bc-all", "retrofit.methods.bc", "BCTrainer", "BCAllConfig",
        "Behaviour cloning of all transitions, deterministic MLP actor (OSRL)",
    ),
    MethodSpec(
        "bc-safe", "retrofit.methods.bc", "BCTrainer", "BCSafeConfig",
        "Behaviour cloning of trajectories within the cost limit (OSRL)",
    ),
    MethodSpec(
        "ppl", "retrofit.methods.ppl", "PPLTrainer", "PPLConfig",
        "Bradley-Terry preference learning from the reference, no SFT (PREFINE's baseline)",
    ),
]
