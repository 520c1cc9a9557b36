"""What an advantage estimator is: a rule from a step's rewards (and, for some, the critic's values)
to per-token advantages, with what it needs declared beside it.

The declarations are read by everything that depends on them: the config checks
(:meth:`AdvantageEstimator.problems`, run by the preflight and ``--dry-run``), the learner (a critic
is built, stepped and saved only where :attr:`~AdvantageEstimator.needs_critic`) and the memory plan.
A new estimator is a subclass in a file of its own plus one entry in :mod:`orz_rl.advantages.registry`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDict
from torchrl.objectives.value import GAE

from orz_rl import keys
from orz_rl.advantages.kl import KLEstimator, penalise_token_rewards
from orz_rl.advantages.token_gae import gae_advantages, make_gae, set_next_values, set_token_rewards
from orz_rl.config import Aggregation, TrainConfig


@dataclass(frozen=True)
class AdvantageInputs:
    """What a step hands its estimator besides the batch."""

    gae: GAE
    """The run's TorchRL GAE (``ppo.gamma``, ``ppo.lmbda``)."""
    group_size: int
    """Responses per prompt, adjacent in the batch (``rollout.samples_per_prompt``)."""
    normalize: bool = True
    """Normalise over the batch's valid tokens, where the estimator leaves it to the run."""
    reward_clip: float = 10.0
    """Rewards are clipped to ``[-reward_clip, reward_clip]`` first."""
    kl_penalty: tuple[float, KLEstimator] | None = None
    """``(coef, estimator)``: the KL to the reference subtracted from every token's reward first."""


@dataclass(frozen=True)
class AdvantageEstimator:
    """One advantage estimator (``ppo.advantage``) and what it needs from the run."""

    name: str
    """The value of ``ppo.advantage`` that selects it."""
    summary: str
    """One line for ``--help`` and the docs."""
    needs_critic: bool = False
    """It reads the critic's ``state_value``: the run builds, steps and saves a critic."""
    min_group_size: int = 1
    """It compares the responses to one prompt: at least this many per prompt."""
    token_rewards: bool = False
    """It reads per-token rewards, which a KL penalty (``ppo.kl_in = 'reward'``) can go into."""
    aggregation: Aggregation | None = None
    """The loss aggregation it is defined with (``ppo.aggregation``), if any."""

    def advantages(self, batch: TensorDict, inputs: AdvantageInputs) -> None:
        """Write ``advantage`` ``[N, R, 1]`` (0 on padding) into ``batch``; ``value_target`` too
        where it reads a critic."""
        raise NotImplementedError(f"advantage estimator {self.name!r} computes no advantages")

    def problems(self, cfg: TrainConfig) -> list[str]:
        """What in ``cfg`` this estimator cannot run with, one line each."""
        p, g = cfg.ppo, cfg.rollout.samples_per_prompt
        out = []
        if g < self.min_group_size:
            out.append(
                f"ppo.advantage = {self.name!r} compares the responses to one prompt: "
                f"rollout.samples_per_prompt = {g} must be at least {self.min_group_size}"
            )
        if self.aggregation is not None and p.aggregation != self.aggregation:
            out.append(
                f"ppo.advantage = {self.name!r} is defined with its own loss aggregation: "
                f"set ppo.aggregation = {self.aggregation!r} (it is {p.aggregation!r})"
            )
        if p.uses_reference and p.kl_in == "reward" and not self.token_rewards:
            out.append(
                f"ppo.kl_in = 'reward': ppo.advantage = {self.name!r} scores whole responses, so a per-token "
                "penalty has nowhere to go; use ppo.kl_in = 'loss' (GRPO's form)"
            )
        return out


def set_response_scores(batch: TensorDict, score: torch.Tensor) -> None:
    """Every sampled token of response ``i`` gets ``score[i]``; padding and a tool's output 0."""
    mask = keys.assistant_mask(batch)
    batch.set(keys.ADVANTAGE, torch.where(mask, score[:, None], 0.0).unsqueeze(-1))


def clipped_rewards(batch: TensorDict, inputs: AdvantageInputs) -> torch.Tensor:
    """Each response's reward ``[N]``, clipped as the run says."""
    return batch.get(keys.EPISODE_REWARD).float().clamp(-inputs.reward_clip, inputs.reward_clip)


def valueless_gae(
    batch: TensorDict, reward: torch.Tensor, inputs: AdvantageInputs, lmbda: float | None, normalize: bool
) -> None:
    """GAE over per-token rewards from ``reward`` ``[N]`` with a critic that predicts 0 (the run's
    gamma; ``lmbda`` in place of the run's where given), into ``batch``'s ``advantage``."""
    gae = inputs.gae if lmbda is None else make_gae(float(inputs.gae.gamma), lmbda)
    mask = keys.assistant_mask(batch)
    steps = batch.select(keys.RESPONSE_MASK).set(keys.ASSISTANT_MASK, mask).set(keys.EPISODE_REWARD, reward)
    steps.set(keys.STATE_VALUE, torch.zeros(*mask.shape, 1))
    set_token_rewards(steps, inputs.reward_clip)
    if inputs.kl_penalty is not None:
        steps.update(batch.select(keys.ACTION_LOG_PROB, keys.REF_LOG_PROB))
        penalise_token_rewards(steps, *inputs.kl_penalty)
    set_next_values(steps)
    gae_advantages(steps, gae, normalize=normalize)
    batch.set(keys.ADVANTAGE, steps.get(keys.ADVANTAGE))
