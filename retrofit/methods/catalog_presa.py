"""PreSa, its ablations and the paper's feedback baselines (presa-offline-safe-pohf.txt).

All train with ``retrofit.methods.presa.PresaTrainer`` on one ``retrofit.feedback.Feedback``
(``Retrofitter(policy, method=NAME).fit(feedback)``); they differ only in their config class.
"""

from retrofit.methods.registry import MethodSpec

_MODULE = "retrofit.methods.presa"
_TRAINER = "PresaTrainer"

METHODS = [
    MethodSpec("presa", _MODULE, _TRAINER, "PresaConfig",
               "PreSa: CPL-KL preferences s.t. safety alignment, Lagrangian (Eq. 15)"),
    MethodSpec("presa-no-zref", _MODULE, _TRAINER, "PresaNoZrefConfig",
               "PreSa without the reference point z_ref (ablation, Table 2)"),
    MethodSpec("preference-only", _MODULE, _TRAINER, "PreferenceOnlyConfig",
               "Preference alignment only (CPL-KL on reward preferences)"),
    MethodSpec("safety-only", _MODULE, _TRAINER, "SafetyOnlyConfig",
               "Safety alignment only (Eq. 9 on the safety labels)"),
    MethodSpec("binary-alignment", _MODULE, _TRAINER, "BinaryAlignmentConfig",
               "Binary Alignment: +1 iff preferred and safe, safety-alignment loss (baseline)"),
    MethodSpec("bc-safe-seg", _MODULE, _TRAINER, "BCSafeSegConfig",
               "BC on the safe segments only (baseline)"),
    MethodSpec("unified-comparison", _MODULE, _TRAINER, "UnifiedComparisonConfig",
               "CPL-KL on unified preferences: safe over unsafe, then reward (baseline)"),
    MethodSpec("presa-filtered", _MODULE, _TRAINER, "PresaFilteredConfig",
               "PreSa on filtered preferences: pairs with an unsafe preferred segment dropped"),
]
