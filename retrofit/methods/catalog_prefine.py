"""PREFINE and its ablation (prefine.txt): names, trainers and configs for the method registry."""

from retrofit.methods.registry import MethodSpec

METHODS = [
    MethodSpec(
        "prefine", "retrofit.methods.prefine", "PrefineTrainer", "PrefineConfig",
        "DPO + SFT with policy-sampled counterfactual actions (PREFINE)",
    ),
    MethodSpec(
        "dpo", "retrofit.methods.prefine", "PrefineTrainer", "VanillaDPOConfig",
        "PREFINE without the SFT anchor (sft_weight = 0), the paper's ablation",
    ),
    MethodSpec(
        "sft-only", "retrofit.methods.prefine", "PrefineTrainer", "SFTOnlyConfig",
        "PREFINE's SFT term alone (dpo_weight = 0): likelihood on D_p from pi_ref",
    ),
]
