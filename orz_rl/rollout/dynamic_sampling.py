"""DAPO's dynamic sampling (Yu et al. 2025, arXiv 2503.14476, section 3.2): a step trains only on
groups whose rewards differ (``rollout.dynamic_sampling``).

A group whose responses all scored the same (all right or all wrong) has no group-relative
advantage: under GRPO-family estimators its tokens carry no gradient and only dilute the batch. The
step drops such groups and samples the next prompts, a rollout at a time, until it has
``prompts_per_step`` groups whose rewards differ or has sampled ``max_sampling_rounds`` rollouts;
a batch still short then is filled with dropped groups, so every step has the same shape.

TorchRL's :class:`~torchrl.objectives.llm.MCAdvantage` can drop groups too (``keep_return_bounds``),
by the group's mean return as it streams trajectories into a buffer: for 0/1 rewards that is the
same rule (``tests/rollout/test_dynamic_sampling.py`` holds them side by side), but a group of equal
partial scores (a code task's 0.5 each) has a mean inside any bounds, and the trainer's step needs
whole batches refilled from the env rather than a buffer that fills up over time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import torch
from tensordict import TensorDict

from orz_rl import keys
from orz_rl.advantages.groups import groups
from orz_rl.rollout.training_batch import cat_batches


def differing_groups(reward: torch.Tensor, group_size: int) -> torch.Tensor:
    """``[N / G]``: True for each group (``G`` adjacent responses) whose rewards are not all equal."""
    g = groups(reward, group_size)
    return (g != g[:, :1]).any(-1)


def sample_differing_groups(
    sample: Callable[[], tuple[TensorDict, dict[str, float]]],
    *,
    group_size: int,
    prompts: int,
    max_rounds: int,
    pad_token_id: int,
) -> tuple[TensorDict, dict[str, float], dict[str, float]]:
    """Call ``sample`` (one rollout and its seconds) until its batches hold ``prompts`` groups whose
    rewards differ, ``max_rounds`` times at most; returns the batch of ``prompts`` groups (those
    first, in the order sampled, then dropped ones where short), the seconds summed, and figures:

    * ``sampling/rounds``: rollouts sampled;
    * ``sampling/groups_dropped``: groups of equal rewards among them;
    * ``sampling/extra_responses``: responses generated beyond one batch;
    * ``sampling/groups_short``: groups of equal rewards the batch was filled with.
    """
    kept, dropped, seconds = [], [], Counter()
    found = rounds = generated = 0
    while rounds < max_rounds and found < prompts:
        batch, spent = sample()
        seconds.update(spent)
        rounds, generated = rounds + 1, generated + batch.shape[0]
        differ = differing_groups(batch.get(keys.EPISODE_REWARD), group_size)
        rows = differ.repeat_interleave(group_size)
        kept.append(batch[rows])
        dropped.append(batch[~rows])
        found += int(differ.sum())
    short = max(prompts - found, 0)
    parts = [b for b in kept + dropped if b.shape[0] > 0]  # the dropped groups fill a short batch
    out = cat_batches(parts, pad_token_id)[: prompts * group_size]
    figures = {
        "sampling/rounds": float(rounds),
        "sampling/groups_dropped": float(sum(b.shape[0] for b in dropped) // group_size),
        "sampling/extra_responses": float(generated - prompts * group_size),
        "sampling/groups_short": float(short),
    }
    return out, dict(seconds), figures
