"""PreSa trainer (PreSa §5, Appendix B.4), its ablations and the paper's
feedback baselines, all on the same :class:`retrofit.feedback.Feedback`.

Each step samples ``B`` segment pairs as tensors ``(B, 2, T, ·)``, runs ONE forward pass of the
trainable policy and one of the frozen reference over all ``2·B·T`` segment states, forms the
per-step log-ratios ``log π_θ − log π_ref`` and takes one Adam step on the method's loss
(:mod:`retrofit.losses.presa`). PreSa then takes the projected dual step on ν.

Reference policy. The policy handed to the trainer (``Retrofitter(policy, method="presa")``) IS
π_ref, frozen, and the trainable policy starts as a copy of it. The paper's pipeline pretrains π
by BC on all segments first and freezes that as π_ref: set ``pretrain_steps`` (Table 4: 30k
BulletGym / 60k SafetyGym) to BC the given policy on all segments before freezing it, or build
the paper's reference once with :func:`presa_reference` and pass it in (what the examples do, so
every method of a comparison starts from the same π_ref).

Log-likelihood (``likelihood``). The paper uses CPL's fixed-variance Gaussian,
``log π(a|s) = −‖μ(s) − a‖²`` (Appendix B.4). ``"fixed_variance"`` (default) applies it to the
policy's deterministic action: for retrofit's tanh-Gaussian that is
``centre + half_range · tanh(μ(s))``, the action ``evaluate`` runs, so the loss shapes exactly the
behaviour that is evaluated and the learned σ(s) is unused. ``"adapter"`` uses the adapter's own
``log_prob`` (the exact squashed-Gaussian density): it works with any adapter, but its log-ratios
also move with σ(s), whose changes do not show in deterministic evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from retrofit.adapters.base import PolicyAdapter
from retrofit.device import set_random_seed
from retrofit.errors import ConfigError, DataError, PolicyError
from retrofit.losses.presa import (
    cpl_kl_loss,
    discounted_sum,
    dual_ascent,
    fixed_variance_log_prob,
    label_weights,
    presa_loss,
    reference_point,
    safety_alignment_loss,
    safety_class_weights,
)
from retrofit.methods.registry import register_method
from retrofit.training.config import TrainerConfig
from retrofit.training.samplers import SegmentBatcher
from retrofit.training.trainer import BaseTrainer, Stage

Likelihood = Literal["fixed_variance", "adapter"]
Objective = Literal["presa", "preference", "safety", "bc"]
ZRefMode = Literal["mean", "zero", "clamped"]
FeedbackVariant = Literal["as_given", "filtered", "unified", "binary", "safe_segments"]

# Table 4 of PreSa (Appendix B.4), per domain.
PRESA_PRESETS: dict[str, dict[str, float | int]] = {
    "bullet": {
        "steps": 100_000, "pretrain_steps": 30_000, "batch_size": 32, "dropout": 0.1,
        # Table 4 has η = 0.1; with the clamped reference point a safe segment must stay at
        # least as close to π_θ as to π_ref, and at η = 0.1 the constraint was met by lowering
        # every ψ instead (BallCircle κ = 20: unsafe in 3/3 seeds); η = 1 weighs both classes
        # alike and was safe in 3/3 (docs/presa.md, issue 14). eta=0.1 restores Table 4.
        "learning_rate": 1e-4, "alpha": 0.2, "beta": 1.0, "gamma": 1.0, "eta": 1.0,
        "delta": 0.95, "nu_learning_rate": 0.005,
    },
    "safety": {
        "steps": 200_000, "pretrain_steps": 60_000, "batch_size": 96, "dropout": 0.25,
        "learning_rate": 1e-4, "alpha": 0.2, "beta": 0.2, "gamma": 1.0, "eta": 2.0,
        "delta": 0.9, "nu_learning_rate": 0.0005,
    },
}

@dataclass(frozen=True)
class PresaConfig(TrainerConfig):
    """PreSa hyper-parameters; ``None`` takes the domain preset of Table 4 (BulletGym/SafetyGym).

    alpha: CPL-KL temperature α of the preference term (0.2 / 0.2).
    beta: temperature β of the segment score ψ, Eq. 7 (1.0 / 0.2).
    gamma: discount γ inside segments (1.0 / 1.0).
    eta: class balance η, ``λ_s n_s / (λ_u n_u) = η`` with λ_u = 1 (1.0 / 2.0; Table 4's
        BulletGym value is 0.1, see ``PRESA_PRESETS``).
    delta: constraint level δ on the mean label probability (0.95 / 0.9).
    nu_learning_rate: step of the projected dual ascent on ν (0.005 / 0.0005).
    batch_size: segment pairs per step (32 / 96).
    steps: alignment steps (100k / 200k).
    learning_rate: Adam learning rate of the policy (1e-4, both domains).
    pretrain_steps: BC steps of the given policy on all segments before it is frozen as π_ref
        (paper: 30k / 60k from a fresh network; 0 = the given policy already is π_ref).
    initial_nu: ν at step 0 (0, spec).
    likelihood: "fixed_variance" (paper, ``−‖μ(s) − a‖²``) or "adapter" (the adapter's
        ``log_prob``); see the module docstring.
    objective: "presa" (Eq. 15), "preference" (CPL-KL only), "safety" (Eq. 9 only) or "bc"
        (maximum likelihood on the segments' actions).
    use_reference_point: False sets z_ref = 0 (the paper's "w/o z_ref" ablation, Table 2).
    z_ref: the reference point of Eq. 11 when used: "clamped" (default, ``max(0, mean)``,
        KTO's), "mean" (batch mean of ψ, the paper's text) or "zero"; docs/presa.md. The
        paper-literal reading is ``z_ref="mean", eta=0.1`` (BulletGym).
    feedback_variant: which labels to learn from: "as_given", "filtered" (Appendix C.4),
        "unified" (Unified Comparison, C.3), "binary" (Binary Alignment, §6.1) or
        "safe_segments" (only the safe segments; BC-Safe-Seg).
    precompute_reference: score every dataset transition under the frozen π_ref once before
        training (as TRL's ``precompute_ref_log_probs``) instead of one reference forward per
        step; exact, since π_ref is frozen and in eval mode (dropout off). True by default.
    """

    alpha: float | None = None
    beta: float | None = None
    gamma: float | None = None
    eta: float | None = None
    delta: float | None = None
    nu_learning_rate: float | None = None
    batch_size: int | None = None
    steps: int | None = None
    learning_rate: float = 1e-4
    pretrain_steps: int = 0
    initial_nu: float = 0.0
    likelihood: Likelihood = "fixed_variance"
    objective: Objective = "presa"
    use_reference_point: bool = True
    z_ref: ZRefMode = "clamped"
    feedback_variant: FeedbackVariant = "as_given"
    precompute_reference: bool = True

    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = PRESA_PRESETS

    def check(self) -> None:
        """Raise ``ConfigError`` on out-of-range values."""
        for name in ("alpha", "beta", "eta", "learning_rate"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name}={value} must be > 0.")
        if self.gamma is not None and not 0 < self.gamma <= 1:
            raise ConfigError(f"gamma={self.gamma} must be in (0, 1].")
        if self.delta is not None and not 0 < self.delta <= 1:
            raise ConfigError(f"delta={self.delta} must be in (0, 1] (a probability level).")
        if self.nu_learning_rate is not None and self.nu_learning_rate < 0:
            raise ConfigError(f"nu_learning_rate={self.nu_learning_rate} must be >= 0.")
        if self.initial_nu < 0:
            raise ConfigError(f"initial_nu={self.initial_nu} must be >= 0 (ν lives on ν ≥ 0).")
        if self.pretrain_steps < 0:
            raise ConfigError(f"pretrain_steps={self.pretrain_steps} must be >= 0.")


@dataclass(frozen=True)
class PresaNoZrefConfig(PresaConfig):
    """PreSa without the reference point (z_ref = 0): the paper's ablation, Table 2."""

    use_reference_point: bool = False


@dataclass(frozen=True)
class PreferenceOnlyConfig(PresaConfig):
    """Preference alignment alone (CPL-KL, Eq. 4) on the reward preferences (§6.2)."""

    objective: Objective = "preference"


@dataclass(frozen=True)
class SafetyOnlyConfig(PresaConfig):
    """Safety alignment alone (Eq. 9) on the safety labels (§6.2)."""

    objective: Objective = "safety"


@dataclass(frozen=True)
class BinaryAlignmentConfig(PresaConfig):
    """Binary Alignment (§6.1): +1 iff preferred and safe, else −1; safety-alignment loss only."""

    objective: Objective = "safety"
    feedback_variant: FeedbackVariant = "binary"


@dataclass(frozen=True)
class BCSafeSegConfig(PresaConfig):
    """BC-Safe-Seg (§6.1): behaviour cloning on the safe segments only."""

    objective: Objective = "bc"
    feedback_variant: FeedbackVariant = "safe_segments"


@dataclass(frozen=True)
class UnifiedComparisonConfig(PresaConfig):
    """Unified Comparison (Appendix C.3): safe preferred over unsafe, then higher reward; CPL-KL."""

    objective: Objective = "preference"
    feedback_variant: FeedbackVariant = "unified"


@dataclass(frozen=True)
class PresaFilteredConfig(PresaConfig):
    """PreSa on filtered preferences (Appendix C.4): pairs whose preferred segment is unsafe
    (which includes every both-unsafe pair) are dropped; both terms see only the kept pairs."""

    feedback_variant: FeedbackVariant = "filtered"


# ---------------------------------------------------------------------------- data
def prepare_feedback(feedback: Any, variant: FeedbackVariant) -> Any:
    """Apply a config's ``feedback_variant`` to a :class:`~retrofit.feedback.Feedback`."""
    for name in ("starts", "safety", "segment_length", "dataset"):
        if not hasattr(feedback, name):
            raise DataError(
                f"PreSa-style methods learn from segment feedback; got {type(feedback).__name__} "
                f"without {name!r}. Build it with retrofit.feedback.synthesize(dataset, ...) or "
                "retrofit.feedback.load(path)."
            )
    if variant == "as_given" or variant == "safe_segments":
        return feedback
    return {"filtered": feedback.filtered, "unified": feedback.unified,
            "binary": feedback.binary}[variant]()


# ---------------------------------------------------------------------------- likelihood
def mean_action_fn(adapter: PolicyAdapter) -> Callable[[torch.Tensor], torch.Tensor]:
    """A differentiable ``s ↦ μ(s)`` (the deterministic action): the adapter's ``mean_action``.

    Every adapter retrofit ships has one; a user's own adapter without it can use
    ``likelihood="adapter"``.
    """
    fn = getattr(adapter, "mean_action", None)
    if callable(fn):
        return fn  # type: ignore[no-any-return]
    raise PolicyError(
        f"likelihood='fixed_variance' needs the policy's deterministic action as a "
        f"differentiable function, and {type(adapter).__name__} offers none (no mean_action). "
        "Use likelihood='adapter' (the adapter's log_prob), or add mean_action(obs) to the "
        "adapter."
    )


def _log_prob_fn(
    adapter: PolicyAdapter, likelihood: Likelihood
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if likelihood == "adapter":
        return adapter.log_prob
    mean = mean_action_fn(adapter)
    return lambda obs, act: fixed_variance_log_prob(mean(obs), act)


# ---------------------------------------------------------------------------- trainer
class PresaTrainer(BaseTrainer):
    """Aligns a trainable copy of ``policy`` to segment feedback; ``policy`` (frozen) is π_ref.

    One class runs PreSa and every ablation/baseline; the config's ``objective``,
    ``feedback_variant`` and ``use_reference_point`` select which.
    """

    config_class = PresaConfig
    data_kind = "feedback"
    config: PresaConfig
    derived_state = ("_params",)

    def setup(self, policy: PolicyAdapter) -> None:
        """Frozen π_ref, trainable copy, both log-likelihoods, Adam, ν."""
        config = self.config
        self.fine_tuning_copies(policy)
        self._params = self.trainable_parameters()
        self._policy_logp = _log_prob_fn(self.policy, config.likelihood)
        self._ref_logp = _log_prob_fn(self.reference, config.likelihood)
        self.optimizer = self.adam(self._params, config.learning_rate)
        self.nu = torch.tensor(float(config.initial_nu), device=self.device)
        self._ref_table: torch.Tensor | None = None
        self.lambda_safe = 1.0
        self.lambda_unsafe = 1.0
        self.pretrain_steps_done = 0

    # -------------------------------------------------------------- one step
    def _log_ratio(
        self, obs: torch.Tensor, act: torch.Tensor, rows: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward per network over all segment states: ``(log π_θ, log π_θ − log π_ref)``.

        With precomputed reference scores (and ``rows``) the reference is looked up instead.
        """
        shape = obs.shape[:-1]
        flat_obs, flat_act = obs.reshape(-1, obs.shape[-1]), act.reshape(-1, act.shape[-1])
        logp = self._policy_logp(flat_obs, flat_act).reshape(shape)
        if self._ref_table is not None and rows is not None:
            ref = self._ref_table[rows]
        else:
            with torch.no_grad():
                ref = self._ref_logp(flat_obs, flat_act).reshape(shape)
        return logp, logp - ref

    def _precompute_reference(self, batcher: SegmentBatcher, chunk: int = 65_536) -> None:
        """``log π_ref(a_i|s_i)`` of every dataset transition, in chunks, without gradients."""
        with torch.no_grad():
            parts = [
                self._ref_logp(batcher.obs[i:i + chunk], batcher.act[i:i + chunk])
                for i in range(0, len(batcher.obs), chunk)
            ]
        self._ref_table = torch.cat(parts)

    def update(
        self, obs: torch.Tensor, act: torch.Tensor, labels: torch.Tensor,
        rows: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """One primal Adam step on the method's loss, then (PreSa) the dual step on ν.

        ``rows`` (dataset indices of the states) lets a precomputed reference be looked up.
        """
        cfg = self.config
        assert cfg.alpha is not None and cfg.beta is not None and cfg.gamma is not None
        assert cfg.delta is not None and cfg.nu_learning_rate is not None
        logp, log_ratio = self._log_ratio(obs, act, rows)
        lagrangian, constraint, metrics = presa_loss(
            log_ratio, labels, self.nu, alpha=cfg.alpha, beta=cfg.beta, gamma=cfg.gamma,
            delta=cfg.delta, lambda_safe=self.lambda_safe, lambda_unsafe=self.lambda_unsafe,
            use_reference_point=cfg.use_reference_point, z_ref_mode=cfg.z_ref,
        )
        if cfg.objective == "presa":
            loss = lagrangian
        elif cfg.objective == "preference":
            loss, _ = cpl_kl_loss(log_ratio[:, 0], log_ratio[:, 1], cfg.alpha, cfg.gamma)
        elif cfg.objective == "safety":
            scores = discounted_sum(log_ratio, cfg.beta, cfg.gamma)
            z_ref = reference_point(scores, cfg.z_ref if cfg.use_reference_point else "zero")
            weights = label_weights(labels, self.lambda_safe, self.lambda_unsafe)
            loss = safety_alignment_loss(scores, labels, weights, z_ref)
        else:  # "bc"
            loss = -logp.mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if cfg.objective == "presa":
            self.nu = dual_ascent(self.nu, constraint, cfg.nu_learning_rate)
        metrics["loss"] = loss.detach()
        metrics["logps/policy"] = logp.detach().mean()
        return metrics

    def _pretrain_step(self, obs: torch.Tensor, act: torch.Tensor) -> dict[str, torch.Tensor]:
        flat_obs, flat_act = obs.reshape(-1, obs.shape[-1]), act.reshape(-1, act.shape[-1])
        loss = -self._policy_logp(flat_obs, flat_act).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.pretrain_steps_done += 1
        return {"loss/bc_pretrain": loss.detach()}

    # -------------------------------------------------------------- stages
    def stages(self, feedback: Any = None, *, steps: int) -> list[Stage]:
        """Optionally BC-pretrain on all segments, then align for ``steps``.

        ``feedback`` is a :class:`retrofit.feedback.Feedback`. The logger receives every step's
        metrics (``nu``, ``constraint``, ``rewards/accuracies`` = preference accuracy,
        ``safety/accuracy``, losses, ...; ``loss/bc_pretrain`` while pretraining). Pretraining
        and set-up count as training time; ``steps_done`` counts pretraining steps too.
        """
        if feedback is None:
            raise DataError(
                "PreSa-style methods need segment feedback: fit(feedback) with "
                "retrofit.feedback.synthesize(dataset, ...) or retrofit.feedback.load(path)."
            )
        cfg = self.config
        assert cfg.batch_size is not None and cfg.eta is not None
        data = prepare_feedback(feedback, cfg.feedback_variant)
        n_safe, n_unsafe = int((data.safety > 0).sum()), int((data.safety < 0).sum())
        if cfg.objective in ("presa", "safety"):
            if n_safe == 0 or n_unsafe == 0:
                raise DataError(
                    f"The {cfg.feedback_variant!r} feedback has {n_safe} safe and {n_unsafe} "
                    "unsafe segments; safety alignment needs both."
                )
            self.lambda_safe, self.lambda_unsafe = safety_class_weights(n_safe, n_unsafe, cfg.eta)
        batch_size = cfg.batch_size

        def start_pretraining() -> None:
            self.pretrain_batcher = SegmentBatcher(feedback, batch_size, self.device,
                                                   self.seed + 1)

        def pretrain_update() -> dict[str, torch.Tensor]:
            obs, act, _, _ = self.pretrain_batcher.sample()
            return self._pretrain_step(obs, act)

        def start_alignment() -> None:
            if cfg.pretrain_steps:  # the BC result becomes π_ref (paper Appendix B.4)
                self.reference = self.policy.frozen_copy().to(self.device)
                self._ref_logp = _log_prob_fn(self.reference, cfg.likelihood)
                self.optimizer = self.adam(self._params, cfg.learning_rate)
            self.batcher = SegmentBatcher(
                data, batch_size, self.device, self.seed,
                safe_only=cfg.feedback_variant == "safe_segments",
            )
            if cfg.precompute_reference:
                self._precompute_reference(self.batcher)

        plan = []
        if cfg.pretrain_steps:
            plan.append(Stage("presa-pretrain", cfg.pretrain_steps, pretrain_update,
                              prepare=start_pretraining, callbacks=False))
        plan.append(Stage(self._name(), steps, lambda: self.update(*self.batcher.sample()),
                          prepare=start_alignment))
        return plan

    def _name(self) -> str:
        cfg = self.config
        return f"presa[{cfg.objective},{cfg.feedback_variant}]"

    def hyperparameters(self) -> dict[str, Any]:
        """The resolved config plus the class weights in use, as a JSON-able dict."""
        return {
            **asdict(self.config), "config_class": type(self.config).__name__,
            "lambda_safe": self.lambda_safe, "lambda_unsafe": self.lambda_unsafe,
        }


# ---------------------------------------------------------------------------- reference
def presa_reference(
    feedback: Any,
    *,
    steps: int | None = None,
    domain: str | None = None,
    likelihood: Likelihood = "fixed_variance",
    hidden_sizes: tuple[int, ...] = (256, 256),
    dropout: float | None = None,
    learning_rate: float | None = None,
    action_low: np.ndarray | None = None,
    action_high: np.ndarray | None = None,
    device: str | torch.device = "auto",
    seed: int = 0,
    progress: bool = True,
) -> Any:
    """The paper's π_ref: a fresh ``TanhGaussianPolicy`` BC-trained on all segments.

    Architecture and defaults of Table 4: [256, 256] ReLU MLP with dropout (0.1 BulletGym,
    0.25 SafetyGym), Adam 1e-4, batch of 32 / 96 segment pairs, 30k / 60k steps (``steps``,
    ``dropout`` and ``learning_rate`` override them). The domain is taken from the feedback's task
    unless given. Returns the module (eval mode, on CPU).
    """
    from retrofit.adapters import wrap
    from retrofit.policies.gaussian import TanhGaussianPolicy

    if domain is None and getattr(feedback, "task", None):
        from retrofit.tasks import task_info

        domain = task_info(feedback.task).domain
    preset = PRESA_PRESETS.get(domain or "bullet", PRESA_PRESETS["bullet"])
    data = feedback.dataset
    if action_low is None or action_high is None:
        from retrofit.data.dataset import action_bounds

        action_low, action_high = action_bounds(data)
    set_random_seed(seed)
    module = TanhGaussianPolicy(
        int(data.observations.shape[1]), int(data.actions.shape[1]), action_low, action_high,
        hidden_sizes, dropout=float(preset["dropout"] if dropout is None else dropout),
    )
    module.set_observation_normalizer(data.observations.mean(axis=0), data.observations.std(axis=0))
    config = PresaConfig(
        pretrain_steps=int(preset["pretrain_steps"] if steps is None else steps), steps=0,
        likelihood=likelihood,
        learning_rate=float(preset["learning_rate"] if learning_rate is None else learning_rate),
    ).resolved(domain)
    trainer = PresaTrainer(wrap(module), config, device=device, seed=seed)
    trainer.fit(feedback, progress=progress)
    return trainer.reference.export()


for _name, _config, _summary in (
    ("presa", PresaConfig,
     "PreSa: CPL-KL preferences s.t. safety alignment, Lagrangian (Eq. 15)"),
    ("presa-no-zref", PresaNoZrefConfig,
     "PreSa without the reference point z_ref (ablation, Table 2)"),
    ("preference-only", PreferenceOnlyConfig,
     "Preference alignment only (CPL-KL on reward preferences)"),
    ("safety-only", SafetyOnlyConfig, "Safety alignment only (Eq. 9 on the safety labels)"),
    ("binary-alignment", BinaryAlignmentConfig,
     "Binary Alignment: +1 iff preferred and safe, safety-alignment loss (baseline)"),
    ("bc-safe-seg", BCSafeSegConfig, "BC on the safe segments only (baseline)"),
    ("unified-comparison", UnifiedComparisonConfig,
     "CPL-KL on unified preferences: safe over unsafe, then reward (baseline)"),
    ("presa-filtered", PresaFilteredConfig,
     "PreSa on filtered preferences: pairs with an unsafe preferred segment dropped"),
):
    register_method(_name, PresaTrainer, _config, _summary)

