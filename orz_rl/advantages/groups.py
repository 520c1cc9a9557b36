"""The responses to one prompt as a group: ``G = rollout.samples_per_prompt`` adjacent rows."""

from __future__ import annotations

import torch


def groups(reward: torch.Tensor, group_size: int) -> torch.Tensor:
    """The rewards ``[N]`` as ``[N / G, G]``: one row per prompt (its samples are adjacent)."""
    if group_size < 1 or reward.numel() % group_size:
        raise ValueError(f"{reward.numel()} responses do not form groups of {group_size} samples per prompt")
    return reward.reshape(-1, group_size)


def mean_centred(reward: torch.Tensor, group_size: int) -> torch.Tensor:
    """Each reward minus its group's mean (Dr. GRPO, ORZ's ``use_grpo``)."""
    g = groups(reward.float(), group_size)
    return (g - g.mean(-1, keepdim=True)).reshape(-1)
