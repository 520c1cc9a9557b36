"""A KL term against a frozen reference model: ORZ's ablation, off by default (``ppo.kl_coef = 0``).

ORZ's finding is that its PPO needs no KL; its code keeps both forms the ablation compares, and so
does ``ppo.kl_in``:

* ``loss``: ``kl_coef`` times the aggregated per-token KL, added to the policy loss with its
  gradient (GRPO's form; ORZ's ``use_kl_loss``);
* ``reward``: ``-kl_coef`` times the per-token KL of the rollout's old log-probs, added to every
  token's reward before the advantages (InstructGPT's form; ORZ's ``init_kl_coef``), for the
  estimators that read token rewards (``gae``, ``reinforce_pp``, ``orz_grpo``).

The per-token estimate of KL(pi || pi_ref) from tokens sampled by pi (Schulman, "Approximating KL
divergence", 2020), with ``l = log pi - log pi_ref``: ``k1 = l`` (unbiased, either sign) or
``k3 = exp(-l) - 1 + l`` (unbiased, never below 0; ORZ's ``use_kl_estimator_k3``). Both are 0 where
the policy equals the reference.
"""

from __future__ import annotations

from typing import Literal

import torch
from tensordict import TensorDict

from orz_rl import keys

KLEstimator = Literal["k1", "k3"]


def kl_estimate(log_prob: torch.Tensor, ref_log_prob: torch.Tensor, estimator: KLEstimator) -> torch.Tensor:
    """The per-token estimate of KL(pi || pi_ref) (gradients flow through ``log_prob``)."""
    log_ratio = log_prob - ref_log_prob
    if estimator == "k1":
        return log_ratio
    if estimator == "k3":
        return torch.expm1(-log_ratio) + log_ratio
    raise ValueError(f"unknown KL estimator {estimator!r}; expected 'k1' or 'k3'")


def penalise_token_rewards(batch: TensorDict, coef: float, estimator: KLEstimator) -> TensorDict:
    """Subtract ``coef`` x the KL estimate of the old log-probs from each sampled token's reward."""
    mask = keys.assistant_mask(batch)
    kl = kl_estimate(batch.get(keys.ACTION_LOG_PROB), batch.get(keys.REF_LOG_PROB), estimator)
    penalty = torch.where(mask, coef * kl, 0.0).unsqueeze(-1)
    batch.set(keys.REWARD, batch.get(keys.REWARD) - penalty)
    return batch
