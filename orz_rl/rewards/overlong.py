"""DAPO's overlong handling (Yu et al. 2025, arXiv 2503.14476, section 3.4) of a step's rewards.

A response cut by the length limit is scored as an unfinished answer (0 from a rule reward), which
punishes a sound but long line of reasoning as much as a wrong one. DAPO offers two answers, each a
field of :class:`~orz_rl.config.RewardConfig`:

* ``overlong_filter``: the truncated responses are masked out of the losses (their tokens leave
  ``assistant_mask``), so they teach nothing either way;
* ``overlong_penalty``: DAPO's soft punishment, a penalty rising linearly from 0 to 1 over the last
  ``n`` tokens before the limit, added to the reward.

Both apply to the training batch after the env scored it: the env's reward spec stays the rule's,
and the env's reward is kept as ``score`` (:mod:`orz_rl.keys`) for the run's figures.
"""

from __future__ import annotations

import torch
from tensordict import TensorDict

from orz_rl import keys


def overlong_penalty(length: torch.Tensor, limit: int, buffer: int) -> torch.Tensor:
    """DAPO's ``R_length`` (its eq. 13) of responses of ``length`` tokens under a limit of ``limit``:
    0 up to ``limit - buffer`` tokens, ``(limit - buffer - length) / buffer`` after, -1 from the
    limit on."""
    if not 0 < buffer <= limit:
        raise ValueError(f"the overlong buffer must be 1 to {limit} tokens (the limit), not {buffer}")
    return ((limit - buffer - length.double()) / buffer).clamp(-1.0, 0.0).float()


def shape_overlong(batch: TensorDict, *, limit: int, penalty: int = 0, mask_truncated: bool = False) -> dict:
    """Apply ``reward.overlong_penalty`` (``penalty`` tokens of buffer; 0: none) and
    ``reward.overlong_filter`` (``mask_truncated``) to ``batch`` in place; returns their figures.

    The penalty goes into ``episode_reward`` (the env's reward is kept as ``score``); the filter
    clears ``assistant_mask`` on responses that did not stop."""
    out: dict[str, float] = {}
    if penalty > 0:
        reward = batch.get(keys.EPISODE_REWARD)
        shaped = overlong_penalty(batch.get(keys.RESPONSE_LENGTH), limit, penalty)
        batch.set(keys.SCORE, reward)
        batch.set(keys.EPISODE_REWARD, reward + shaped)
        out["reward/overlong_penalty_mean"] = shaped.mean().item()
        out["reward/overlong_penalised_share"] = (shaped < 0).float().mean().item()
        out["reward/shaped_mean"] = batch.get(keys.EPISODE_REWARD).mean().item()
    if mask_truncated:
        truncated = ~batch.get(keys.STOPPED)
        batch.set(keys.ASSISTANT_MASK, keys.assistant_mask(batch) & ~truncated[:, None])
        out["reward/overlong_filtered_share"] = truncated.float().mean().item()
    return out
