"""How far the engine that sampled a rollout is from the trainer that scores it.

The engine samples each response token with its own numerics (vLLM's kernels, bf16, prefix
caching) and, if a weight sync was missed, with other weights; the trainer's PPO step takes its
old log-probs from its own forward pass. Where the two disagree, the importance ratio is off before
the first update. Per valid response token, with ``d = log pi_trainer - log pi_engine``:

* ``rollout/logprob_abs_diff_mean`` and ``..._max``: ``|d|``;
* ``rollout/logprob_k3_kl``: the k3 estimate ``exp(d) - 1 - d`` of KL(engine || trainer) (the
  tokens are the engine's samples), always >= 0.

``ppo.tis_cap`` (off by default) corrects for it by truncated importance sampling (Yao et al.,
2025, "Your efficient RL framework secretly brings you off-policy RL training"): the policy loss of
each token is weighted by ``min(exp(d), cap)``, gradient-free.
"""

from __future__ import annotations

import torch

from orz_rl.runtime.distributed import Distributed


class LogProbMismatch:
    """Sums ``|d|``, its maximum and the k3 terms over the tokens the policy loss saw since the
    last :meth:`take` (each token once: the update's mini-batches are disjoint)."""

    def __init__(self) -> None:
        self._sums = {"abs": 0.0, "k3": 0.0, "tokens": 0.0}
        self._max = 0.0

    def add(self, trainer: torch.Tensor, engine: torch.Tensor, mask: torch.Tensor) -> None:
        """Count the valid tokens (``mask``) of one micro-batch's log-probs ``[n, R]``."""
        d = (trainer.detach() - engine).float()[mask]
        if d.numel():
            self._sums["abs"] += d.abs().sum().item()
            self._sums["k3"] += (d.exp() - 1 - d).sum().item()
            self._sums["tokens"] += d.numel()
            self._max = max(self._max, d.abs().max().item())

    def take(self, dist: Distributed | None = None) -> dict[str, float]:
        """The metrics over everything added (over every rank's share, under ``dist``); resets."""
        sums = dist.sum(self._sums) if dist is not None else self._sums
        peak = dist.max({"max": self._max})["max"] if dist is not None else self._max
        self.__init__()
        if not sums["tokens"]:
            return {}
        return {
            "rollout/logprob_abs_diff_mean": sums["abs"] / sums["tokens"],
            "rollout/logprob_abs_diff_max": peak,
            "rollout/logprob_k3_kl": sums["k3"] / sums["tokens"],
        }
