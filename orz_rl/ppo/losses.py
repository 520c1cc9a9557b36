"""ORZ's PPO losses on response tokens, built on TorchRL's loss modules.

* :class:`TokenClipPPOLoss` is TorchRL's :class:`~torchrl.objectives.ClipPPOLoss`
  (clipped surrogate, eps 0.2, no entropy bonus, no KL) evaluated per response
  token; it only adds the masking of padded positions and ORZ's aggregation.
* :class:`ClippedValueLoss` is ORZ's critic loss
  ``0.5 * max((V_clip - R)^2, (V - R)^2)`` with ``V_clip = V_old + clamp(V - V_old, -0.2, 0.2)``,
  written as a TorchRL :class:`~torchrl.objectives.LossModule` so the critic
  trains on its own (ORZ: 12 critic steps per policy step).

Aggregation (:func:`aggregate_token_loss`) is a named option: ORZ's code takes
the mean over each sequence's valid tokens, then the mean over sequences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule
from tensordict.utils import NestedKey
from torchrl.objectives import ClipPPOLoss, LossModule
from torchrl.objectives.utils import distance_loss

from orz_rl import keys
from orz_rl.config import Aggregation
from orz_rl.ppo.kl import KLEstimator, kl_estimate
from orz_rl.ppo.mismatch import LogProbMismatch


def aggregate_token_loss(
    loss: torch.Tensor,
    mask: torch.Tensor,
    mode: Aggregation = "seq-mean-token-mean",
    num_sequences: int | None = None,
    num_tokens: int | None = None,
    norm_tokens: int | None = None,
) -> torch.Tensor:
    """Reduce a per-token loss ``[N, R]`` over valid tokens only.

    ``num_sequences`` / ``num_tokens`` are the whole batch's counts when ``loss``
    is one micro-batch of it, so that summing the micro-batch results (gradient
    accumulation) gives exactly the full-batch loss. ``seq-mean-token-sum-norm`` (Dr. GRPO)
    divides each sequence's sum by the same constant, ``norm_tokens`` (the generation budget;
    default the padded width ``R``), not by its own length.
    """
    # where, not multiply: a padded position may hold inf/nan and nan * 0 is nan.
    loss = torch.where(mask, loss, torch.zeros((), dtype=loss.dtype))
    if mode == "seq-mean-token-mean":
        per_seq = loss.sum(-1) / mask.sum(-1).clamp_min(1)
        return per_seq.sum() / (num_sequences or loss.shape[0])
    if mode == "token-mean":
        return loss.sum() / (num_tokens or mask.sum().clamp_min(1))
    if mode == "seq-mean-token-sum-norm":
        return loss.sum() / (norm_tokens or loss.shape[-1]) / (num_sequences or loss.shape[0])
    raise ValueError(
        f"unknown aggregation {mode!r}; expected 'seq-mean-token-mean', 'token-mean' "
        "or 'seq-mean-token-sum-norm'"
    )


class TokenClipPPOLoss(ClipPPOLoss):
    """ClipPPOLoss over response tokens with padding masked out.

    Reads ``action``, ``sample_log_prob`` ([N, R]) and ``advantage`` ([N, R, 1])
    and the ``response_mask``; returns ``loss_objective`` (aggregated), the
    masked ``clip_fraction`` and ``approx_kl``.

    With ``on_policy_without_old_log_probs``, a batch without ``sample_log_prob`` takes it from
    this forward pass, detached: right when the actor has not moved since the rollout (ORZ's one
    policy step per rollout), where the ratio is 1, nothing clips and the gradient is the policy
    gradient. Without it a missing ``sample_log_prob`` is an error, as in TorchRL.

    Where the batch holds the engine's ``generation_log_prob``, every token's distance between
    them and the old log-probs goes to :attr:`mismatch` (:mod:`orz_rl.ppo.mismatch`), and with
    ``tis_cap > 0`` each token's surrogate is weighted by ``min(pi_old / pi_engine, tis_cap)``
    through TorchRL's gradient-free behaviour weight (``log_is_weight`` of ``_log_weight``), inside
    the min of the clip. ``entropy_coef > 0`` adds TorchRL's entropy bonus, ``-coef * H`` per token,
    aggregated as the objective is (``loss_entropy``; ORZ has none). ``kl_coef > 0`` adds the KL to
    the batch's ``ref_log_prob`` (:mod:`orz_rl.ppo.kl`), aggregated likewise (``loss_kl``); where
    the batch has reference log-probs, ``kl_ref`` is the mean per-token estimate either way.
    """

    @dataclass
    class _AcceptedKeys(ClipPPOLoss._AcceptedKeys):
        """Adds ``mask``: the valid-token mask of the response."""

        mask: NestedKey = keys.RESPONSE_MASK

    default_keys = _AcceptedKeys

    def __init__(
        self,
        actor_network,
        *,
        clip_epsilon: float = 0.2,
        aggregation: Aggregation = "seq-mean-token-mean",
        on_policy_without_old_log_probs: bool = False,
        norm_tokens: int | None = None,
        tis_cap: float = 0.0,
        entropy_coef: float = 0.0,
        kl_coef: float = 0.0,
        kl_estimator: KLEstimator = "k3",
    ):
        super().__init__(
            actor_network,
            critic_network=None,
            clip_epsilon=clip_epsilon,
            entropy_bonus=entropy_coef > 0,  # ORZ: none
            entropy_coeff=entropy_coef,
            normalize_advantage=False,  # ORZ normalises over the whole batch, before micro-batching
            reduction="none",
            functional=False,
        )
        self.set_keys(sample_log_prob=keys.SAMPLE_LOG_PROB, action=keys.ACTION, advantage=keys.ADVANTAGE)
        self.loss_mask_key = None  # masking is ours, by response_mask
        self.aggregation = aggregation
        self.norm_tokens = norm_tokens
        self.on_policy_without_old_log_probs = on_policy_without_old_log_probs
        self.tis_cap = tis_cap
        self.kl_coef, self.kl_estimator = kl_coef, kl_estimator
        #: The engine's distance from the old log-probs, over the tokens seen since its last take.
        self.mismatch = LogProbMismatch()
        self._log_weight_cache: torch.Tensor | None = None
        self._old_log_prob: torch.Tensor | None = None
        self._log_prob: torch.Tensor | None = None

    def _get_cur_log_prob(self, tensordict, *args, **kwargs):
        # Kept (with its gradient) for the KL term, whichever way the old log-probs come.
        out = super()._get_cur_log_prob(tensordict, *args, **kwargs)
        self._log_prob = out[0]
        return out

    def _log_weight(self, tensordict, adv_shape):
        if self.on_policy_without_old_log_probs and self.tensor_keys.sample_log_prob not in tensordict.keys():
            log_prob, dist, _ = self._get_cur_log_prob(tensordict)
            # Zero, with the gradient of log_prob: exp() is 1 and its gradient d log_prob.
            log_weight = (log_prob - log_prob.detach()).unsqueeze(-1)
            out = (log_weight, dist, torch.zeros_like(log_weight).detach(), None)
            old = log_prob.detach()
        else:
            out = super()._log_weight(tensordict, adv_shape)
            old = tensordict.get(self.tensor_keys.sample_log_prob)
        self._log_weight_cache, self._old_log_prob = out[0].detach(), old
        engine = tensordict.get(keys.GENERATION_LOG_PROB, None)
        if self.tis_cap > 0 and engine is not None:
            # Capped above, so finite everywhere (padding included, which the mask drops later).
            log_is_weight = (old - engine).clamp_max(math.log(self.tis_cap)).unsqueeze(-1)
            out = (*out[:3], log_is_weight)
        return out

    def forward(
        self, tensordict: TensorDictBase, num_sequences: int | None = None, num_tokens: int | None = None
    ) -> TensorDict:
        td_out = super().forward(tensordict)
        mask = tensordict.get(self.tensor_keys.mask)
        loss = td_out.get("loss_objective").reshape(mask.shape)
        log_weight = self._log_weight_cache.reshape(mask.shape)
        engine = tensordict.get(keys.GENERATION_LOG_PROB, None)
        if engine is not None:
            self.mismatch.add(self._old_log_prob.reshape(mask.shape), engine, mask)
        log_prob = self._log_prob.reshape(mask.shape)
        self._log_weight_cache = self._old_log_prob = self._log_prob = None
        extra = {}
        ref = tensordict.get(keys.REF_LOG_PROB, None)
        if ref is not None:
            kl = kl_estimate(log_prob, ref, self.kl_estimator)
            with torch.no_grad():
                extra["kl_ref"] = torch.where(mask, kl, 0.0).sum() / mask.sum().clamp_min(1)
            if self.kl_coef > 0:
                extra["loss_kl"] = self.kl_coef * aggregate_token_loss(
                    kl, mask, self.aggregation, num_sequences, num_tokens, self.norm_tokens
                )
        if self.entropy_bonus:
            entropy = td_out.get("loss_entropy").reshape(mask.shape)
            extra["loss_entropy"] = aggregate_token_loss(
                entropy, mask, self.aggregation, num_sequences, num_tokens, self.norm_tokens
            )
        lo, hi = self._clip_bounds
        with torch.no_grad():
            clipped = ((log_weight < lo) | (log_weight > hi)) & mask
            valid = mask.sum().clamp_min(1)
            # k3 estimator of KL(old || new) over valid tokens, for logging only.
            approx_kl = torch.where(mask, log_weight.exp() - 1 - log_weight, 0.0).sum() / valid
        return TensorDict(
            {
                "loss_objective": aggregate_token_loss(
                    loss, mask, self.aggregation, num_sequences, num_tokens, self.norm_tokens
                ),
                "clip_fraction": clipped.sum() / valid,
                "approx_kl": approx_kl,
                **extra,
            }
        )


class ClippedValueLoss(LossModule):
    """ORZ's clipped critic loss on response tokens.

    Reads the rollout-time ``state_value`` (V_old) and ``value_target`` (the GAE
    return R), runs the critic for the current V, and returns ``loss_critic``
    (``coeff * max((V_clip - R)^2, (V - R)^2)``, aggregated over valid tokens)
    and ``value_clip_fraction``.
    """

    @dataclass
    class _AcceptedKeys:
        """Input keys, renamable with :meth:`set_keys`."""

        value: NestedKey = keys.STATE_VALUE
        value_target: NestedKey = keys.VALUE_TARGET
        mask: NestedKey = keys.RESPONSE_MASK

    default_keys = _AcceptedKeys
    tensor_keys: _AcceptedKeys

    def __init__(
        self,
        critic_network: TensorDictModule,
        *,
        clip_value: float = 0.2,
        coeff: float = 0.5,
        aggregation: Aggregation = "seq-mean-token-mean",
        norm_tokens: int | None = None,
    ) -> None:
        super().__init__()
        self._set_deprecated_ctor_keys()
        self.critic_network = critic_network
        self.clip_value = clip_value
        self.coeff = coeff
        self.aggregation = aggregation
        self.norm_tokens = norm_tokens

    def _forward_value_estimator_keys(self, **kwargs) -> None:
        pass

    def forward(
        self, tensordict: TensorDictBase, num_sequences: int | None = None, num_tokens: int | None = None
    ) -> TensorDict:
        mask = tensordict.get(self.tensor_keys.mask)
        old = tensordict.get(self.tensor_keys.value).squeeze(-1)
        target = tensordict.get(self.tensor_keys.value_target).squeeze(-1)
        # The critic writes its output under the same key: run it on a shallow copy.
        value = self.critic_network(tensordict.clone(False)).get(self.tensor_keys.value).squeeze(-1)
        clipped = old + (value - old).clamp(-self.clip_value, self.clip_value)
        loss = torch.maximum(
            distance_loss(target, value, loss_function="l2"),
            distance_loss(target, clipped, loss_function="l2"),
        )
        with torch.no_grad():
            clip_frac = (((value - old).abs() > self.clip_value) & mask).sum() / mask.sum().clamp_min(1)
        return TensorDict(
            {
                "loss_critic": self.coeff
                * aggregate_token_loss(
                    loss, mask, self.aggregation, num_sequences, num_tokens, self.norm_tokens
                ),
                "value_clip_fraction": clip_frac,
            }
        )
