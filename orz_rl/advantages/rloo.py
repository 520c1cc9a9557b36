"""``rloo`` (RLOO, arXiv 2402.14740): each reward minus the mean of its group's other responses."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDict

from orz_rl.advantages.estimator import (
    AdvantageEstimator,
    AdvantageInputs,
    clipped_rewards,
    set_response_scores,
)
from orz_rl.advantages.groups import groups


def leave_one_out(reward: torch.Tensor, group_size: int) -> torch.Tensor:
    """RLOO: each reward minus the mean of the other ``G - 1`` rewards of its group."""
    if group_size < 2:
        raise ValueError("RLOO needs at least 2 samples per prompt (rollout.samples_per_prompt)")
    g = groups(reward.float(), group_size)
    return (g - (g.sum(-1, keepdim=True) - g) / (group_size - 1)).reshape(-1)


@dataclass(frozen=True)
class RLOO(AdvantageEstimator):
    """Leave-one-out baselined response rewards on every token of the response."""

    def advantages(self, batch: TensorDict, inputs: AdvantageInputs) -> None:
        set_response_scores(batch, leave_one_out(clipped_rewards(batch, inputs), inputs.group_size))


RLOO_ESTIMATOR = RLOO("rloo", "RLOO: the mean of the group's other responses", min_group_size=2)
