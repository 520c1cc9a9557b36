"""``grpo`` (DeepSeekMath, arXiv 2402.03300): each reward standardised within its group, ``(R_i -
mean) / std`` (unbiased std), by TorchRL's :class:`~torchrl.objectives.llm.MCAdvantage`."""

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


def grpo_scores(reward: torch.Tensor, group_size: int) -> torch.Tensor:
    """GRPO: each reward standardised within its group, by TorchRL's ``MCAdvantage`` (one-step
    trajectories grouped by prompt; unbiased std, clamped at 1e-6, so an all-equal group is 0)."""
    n = reward.numel()
    steps = TensorDict(
        {
            "group": (torch.arange(n) // group_size).reshape(n, 1),
            "index": torch.arange(n).reshape(n, 1),
            "next": {
                "reward": reward.reshape(n, 1, 1).float(),
                "done": torch.ones(n, 1, 1, dtype=torch.bool),
            },
        },
        batch_size=[n, 1],
    )
    groups(reward, group_size)  # the same check as the others
    # Imported here: torchrl.objectives.llm imports vLLM (~5 s), and the estimator registry is
    # read by every `orz-rl train` refusal, which loads no model.
    from torchrl.objectives.llm import MCAdvantage

    out = MCAdvantage(grpo_size=group_size, prompt_key="group").inv(steps)
    advantage = torch.empty(n)
    advantage[out.get("index").reshape(-1)] = out.get("advantage").reshape(-1)
    return advantage


@dataclass(frozen=True)
class GRPO(AdvantageEstimator):
    """Group-standardised response rewards on every token of the response."""

    def advantages(self, batch: TensorDict, inputs: AdvantageInputs) -> None:
        set_response_scores(batch, grpo_scores(clipped_rewards(batch, inputs), inputs.group_size))


GRPO_ESTIMATOR = GRPO("grpo", "GRPO: the group's mean and std", min_group_size=2)
