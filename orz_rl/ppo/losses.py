"""ORZ's PPO losses on response tokens: pure tensor functions inside thin TorchRL loss modules.

* :func:`clipped_surrogate` is PPO's clipped objective per token (TorchRL's ``ClipPPOLoss``
  arithmetic, eps 0.2), with an optional gradient-free importance weight; :class:`TokenClipPPOLoss`
  runs the actor, masks padding and aggregates it the ORZ way.
* :func:`clipped_value_loss` is ORZ's critic loss ``0.5 * max((V_clip - R)^2, (V - R)^2)`` with
  ``V_clip = V_old + clamp(V - V_old, -0.2, 0.2)``; :class:`ClippedValueLoss` runs the critic, so
  it trains on its own (ORZ: 12 critic steps per policy step).

The modules are TorchRL :class:`~torchrl.objectives.LossModule` s (their input keys renamable with
``set_keys``) that read a batch, call the functions and reduce; the functions take tensors only,
as verl's ``compute_policy_loss`` and CleanRL's inline loss do, so the loss does not depend on a
TorchRL class's private steps. Aggregation (:func:`aggregate_token_loss`) is a named option: ORZ's
code takes the mean over each sequence's valid tokens, then the mean over sequences.

Stock TorchRL ``ClipPPOLoss`` also runs on an orz-rl batch (the behaviour log-prob is at its default
``action_log_prob``, and :func:`orz_rl.advantages.token_gae.set_token_rewards` writes TorchRL's
``("collector", "mask")``, which its ``loss_mask_key="auto"`` drops padding by): it computes the
``"token-mean"`` aggregation, not ORZ's per-sequence mean (``tests/ppo/test_stock_losses.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule, TensorDictModuleBase
from tensordict.utils import NestedKey
from torchrl.objectives import LossModule

from orz_rl import keys
from orz_rl.advantages.kl import KLEstimator, kl_estimate
from orz_rl.config import Aggregation
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


def clip_bounds(clip_epsilon: float | tuple[float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """``log(1 - eps_low)`` and ``log(1 + eps_high)``, the bounds of the clipped log-ratio, in
    float32 as TorchRL's ``ClipPPOLoss`` computes them (so the two clip the same tokens).
    ``clip_epsilon``: one epsilon for both sides (PPO, ORZ), or ``(low, high)`` as TorchRL takes
    it (DAPO's clip-higher: a wider upper side, room for unlikely tokens to grow)."""
    low, high = clip_epsilon if isinstance(clip_epsilon, tuple) else (clip_epsilon, clip_epsilon)
    return torch.tensor(-low, dtype=torch.float32).log1p(), torch.tensor(high, dtype=torch.float32).log1p()


def clipped_surrogate(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantage: torch.Tensor,
    bounds: tuple[torch.Tensor, torch.Tensor],
    log_is_weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate per token, to minimise: ``-min(w A, clip(w) A)`` with
    ``w = pi / pi_old`` and ``log w`` clipped to ``bounds`` (:func:`clip_bounds`).

    ``log_is_weight`` (gradient-free, ``log(pi_old / pi_behaviour)``) weights both terms inside the
    min, as TorchRL's ``ClipPPOLoss`` weights them by its behaviour ratio. Returns the loss and
    ``log w``, all of the shape of ``log_prob``."""
    log_weight = log_prob - old_log_prob
    log_behaviour = log_weight if log_is_weight is None else log_weight + log_is_weight
    clipped = log_weight.clamp(*bounds)
    if log_is_weight is not None:
        clipped = clipped + log_is_weight
    gain = torch.minimum(log_behaviour.exp() * advantage, clipped.exp() * advantage)
    return -gain, log_weight


def clipped_value_loss(
    value: torch.Tensor, old_value: torch.Tensor, target: torch.Tensor, clip_value: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """ORZ's critic loss per token, ``max((V_clip - R)^2, (V - R)^2)`` with
    ``V_clip = V_old + clamp(V - V_old, -clip_value, clip_value)``; returns it and where ``V`` moved
    past the clip."""
    moved = value - old_value
    clipped = old_value + moved.clamp(-clip_value, clip_value)
    loss = torch.maximum(
        F.mse_loss(target, value, reduction="none"), F.mse_loss(target, clipped, reduction="none")
    )
    return loss, moved.abs() > clip_value


def _trained_tokens(tensordict: TensorDictBase, key: NestedKey) -> torch.Tensor:
    """The mask at ``key``; ``response_mask`` where that is ``assistant_mask`` and the batch has
    none (a single-turn batch, all of whose response tokens were sampled)."""
    mask = tensordict.get(key, None)
    if mask is None and key == keys.ASSISTANT_MASK:
        return tensordict.get(keys.RESPONSE_MASK)
    if mask is None:
        raise KeyError(f"the batch has no mask at {key!r}")
    return mask


class TokenClipPPOLoss(LossModule):
    """PPO's clipped objective over the sampled tokens, padding and a tool's output masked out
    (ORZ: eps 0.2, no entropy bonus, no KL).

    Reads ``action``, ``action_log_prob`` (PPO's old log-probs, [N, R]), ``advantage``
    ([N, R, 1]) and ``assistant_mask`` (``response_mask`` if absent); runs the actor for the
    current log-probs; returns ``loss_objective`` (aggregated), the masked ``clip_fraction`` and
    ``approx_kl``.

    With ``on_policy_without_old_log_probs``, a batch without ``action_log_prob`` takes it from
    this forward pass, detached: right when the actor has not moved since the rollout (ORZ's one
    policy step per rollout), where the ratio is 1, nothing clips and the gradient is the policy
    gradient. Without it a missing ``action_log_prob`` is an error.

    Where the batch holds the engine's ``generation_log_prob``, every token's distance between
    them and the old log-probs goes to :attr:`mismatch` (:mod:`orz_rl.ppo.mismatch`), and with
    ``tis_cap > 0`` each token's surrogate is weighted by ``min(pi_old / pi_engine, tis_cap)``
    (gradient-free, inside the min of the clip; ``tis_clip_fraction``: the tokens the cap truncated).
    ``entropy_coef > 0`` adds an entropy bonus,
    ``-coef * H`` per token, aggregated as the objective is (``loss_entropy``; ORZ has none).
    ``kl_coef > 0`` adds the KL to the batch's ``ref_log_prob`` (:mod:`orz_rl.advantages.kl`), aggregated
    likewise (``loss_kl``); where the batch has reference log-probs, ``kl_ref`` is the mean
    per-token estimate either way.
    """

    @dataclass
    class _AcceptedKeys:
        """Input keys, renamable with :meth:`set_keys` (``sample_log_prob`` as in ``ClipPPOLoss``)."""

        action: NestedKey = keys.ACTION
        sample_log_prob: NestedKey = keys.ACTION_LOG_PROB
        advantage: NestedKey = keys.ADVANTAGE
        mask: NestedKey = keys.ASSISTANT_MASK
        generation_log_prob: NestedKey = keys.GENERATION_LOG_PROB
        ref_log_prob: NestedKey = keys.REF_LOG_PROB

    default_keys = _AcceptedKeys
    tensor_keys: _AcceptedKeys

    def __init__(
        self,
        actor_network: TensorDictModuleBase,
        *,
        clip_epsilon: float | tuple[float, float] = 0.2,
        aggregation: Aggregation = "seq-mean-token-mean",
        on_policy_without_old_log_probs: bool = False,
        norm_tokens: int | None = None,
        tis_cap: float = 0.0,
        entropy_coef: float = 0.0,
        kl_coef: float = 0.0,
        kl_estimator: KLEstimator = "k3",
    ) -> None:
        super().__init__()
        #: The actor: ``get_dist(batch).log_prob(batch["action"])`` gives the current log-probs.
        self.actor_network = actor_network
        self.clip_epsilon = clip_epsilon
        self.aggregation = aggregation
        self.norm_tokens = norm_tokens
        self.on_policy_without_old_log_probs = on_policy_without_old_log_probs
        self.tis_cap = tis_cap
        self.entropy_coef = entropy_coef
        self.kl_coef, self.kl_estimator = kl_coef, kl_estimator
        #: The engine's distance from the old log-probs, over the tokens seen since its last take.
        self.mismatch = LogProbMismatch()

    def forward(
        self, tensordict: TensorDictBase, num_sequences: int | None = None, num_tokens: int | None = None
    ) -> TensorDict:
        k = self.tensor_keys
        mask = _trained_tokens(tensordict, k.mask)

        def reduce(loss: torch.Tensor) -> torch.Tensor:
            return aggregate_token_loss(
                loss, mask, self.aggregation, num_sequences, num_tokens, self.norm_tokens
            )

        # The actor writes its outputs into what it reads: run it on a shallow copy.
        dist = self.actor_network.get_dist(tensordict.clone(False))
        log_prob = dist.log_prob(tensordict.get(k.action))
        # A masked position (padding, a tool's output) may hold anything: made inert here, since
        # torch.where's backward would turn an inf there into a NaN gradient (0 * inf).
        inert = log_prob.detach()
        old = torch.where(mask, self._old_log_prob(tensordict, log_prob), inert)
        engine = tensordict.get(k.generation_log_prob, None)
        log_is_weight = None
        if engine is not None:
            engine = torch.where(mask, engine, old)
            self.mismatch.add(old, engine, mask)
            if self.tis_cap > 0:
                # Capped above, so finite everywhere (padding included, which the mask drops).
                log_is_weight = (old - engine).clamp_max(math.log(self.tis_cap))
                capped = ((old - engine) > math.log(self.tis_cap)) & mask
        advantage = torch.where(mask, tensordict.get(k.advantage).reshape(mask.shape), 0.0)
        bounds = clip_bounds(self.clip_epsilon)
        loss, log_weight = clipped_surrogate(log_prob, old, advantage, bounds, log_is_weight)
        out = {"loss_objective": reduce(loss)}
        with torch.no_grad():
            log_weight = log_weight.detach()
            valid = mask.sum().clamp_min(1)
            clipped = ((log_weight < bounds[0]) | (log_weight > bounds[1])) & mask
            out["clip_fraction"] = clipped.sum() / valid
            if log_is_weight is not None:  # tokens whose importance weight the cap truncated
                out["tis_clip_fraction"] = capped.sum() / valid
            # k3 estimator of KL(old || new) over valid tokens, for logging only.
            out["approx_kl"] = torch.where(mask, log_weight.exp() - 1 - log_weight, 0.0).sum() / valid
        if self.entropy_coef > 0:
            out["loss_entropy"] = reduce(-self.entropy_coef * dist.entropy())
        ref = tensordict.get(k.ref_log_prob, None)
        if ref is not None:
            kl = kl_estimate(log_prob, torch.where(mask, ref, inert), self.kl_estimator)
            with torch.no_grad():
                out["kl_ref"] = torch.where(mask, kl, 0.0).sum() / valid
            if self.kl_coef > 0:
                out["loss_kl"] = self.kl_coef * reduce(kl)
        return TensorDict(out)

    def _old_log_prob(self, tensordict: TensorDictBase, log_prob: torch.Tensor) -> torch.Tensor:
        """PPO's old log-probs: the batch's, or (``on_policy_without_old_log_probs``) this pass's."""
        key = self.tensor_keys.sample_log_prob
        old = tensordict.get(key, None)
        if old is None:
            if not self.on_policy_without_old_log_probs:
                raise KeyError(
                    f"the batch has no old log-probs at {key!r}: compute them before the update, or "
                    "make the loss with on_policy_without_old_log_probs=True (one policy step per rollout)"
                )
            return log_prob.detach()
        if old.requires_grad:
            raise RuntimeError(f"the old log-probs at {key!r} require grad: store them detached")
        return old


class ClippedValueLoss(LossModule):
    """ORZ's clipped critic loss on response tokens.

    Reads the rollout-time ``state_value`` (V_old) and ``value_target`` (the GAE
    return R), runs the critic for the current V, and returns ``loss_critic``
    (``coeff *`` :func:`clipped_value_loss`, aggregated over valid tokens)
    and ``value_clip_fraction``.
    """

    @dataclass
    class _AcceptedKeys:
        """Input keys, renamable with :meth:`set_keys`."""

        value: NestedKey = keys.STATE_VALUE
        value_target: NestedKey = keys.VALUE_TARGET
        mask: NestedKey = keys.ASSISTANT_MASK

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
        self.critic_network = critic_network
        self.clip_value = clip_value
        self.coeff = coeff
        self.aggregation = aggregation
        self.norm_tokens = norm_tokens

    def forward(
        self, tensordict: TensorDictBase, num_sequences: int | None = None, num_tokens: int | None = None
    ) -> TensorDict:
        k = self.tensor_keys
        mask = _trained_tokens(tensordict, k.mask)
        old = tensordict.get(k.value).squeeze(-1)
        target = tensordict.get(k.value_target).squeeze(-1)
        # The critic writes its output under the same key: run it on a shallow copy.
        value = self.critic_network(tensordict.clone(False)).get(k.value).squeeze(-1)
        loss, moved = clipped_value_loss(value, old, target, self.clip_value)
        with torch.no_grad():
            clip_frac = (moved & mask).sum() / mask.sum().clamp_min(1)
        aggregated = aggregate_token_loss(
            loss, mask, self.aggregation, num_sequences, num_tokens, self.norm_tokens
        )
        return TensorDict({"loss_critic": self.coeff * aggregated, "value_clip_fraction": clip_frac})
