"""Advantage estimators by name (``ppo.advantage``): ORZ's GAE with its critic, and the critic-free
baselines people weigh it against.

A step's batch holds ``G = rollout.samples_per_prompt`` responses to each prompt, adjacent
(:mod:`orz_rl.keys`); response ``i`` of a group has the reward ``R_i``. Every estimator writes
``advantage`` ``[N, R, 1]`` over the valid response tokens (0 on padding):

* ``gae`` (ORZ; Schulman et al. 2016): GAE from the critic's values, gamma = lambda = 1 in ORZ,
  normalised over the batch;
* ``grpo`` (DeepSeekMath, arXiv 2402.03300): ``(R_i - mean) / std`` of its group (unbiased std);
* ``dr_grpo`` (Dr. GRPO, arXiv 2503.20783): ``R_i - mean`` of its group;
* ``rloo`` (RLOO, arXiv 2402.14740): ``R_i`` minus the mean of the group's other responses;
* ``reinforce_pp`` (REINFORCE++, arXiv 2501.03262): the return from the token on (``ppo.gamma``),
  normalised over the batch;
* ``orz_grpo`` (ORZ's ``use_grpo``): ``R_i - mean``, then ORZ's GAE without values, normalised.

"normalised" is the mean and std over every valid token of the batch (``ppo.normalize_advantages``
for ``gae`` and ``orz_grpo``; always for REINFORCE++, whose point it is). Dr. GRPO's second change,
a constant length normaliser instead of each response's own length, is the loss aggregation
``seq-mean-token-sum-norm`` (:func:`orz_rl.ppo.losses.aggregate_token_loss`), which the run must
name with it (``orz_rl.runtime.preflight``).

``orz_grpo`` is ORZ's code as it behaves: its GRPO switch centres each score by its group's mean and
means to divide by the std, but ``if std := np.std(...) > 0`` binds the comparison, so it divides by
``True``; the centred scores then go through ORZ's GAE with no critic (values 0) and its batch
normalisation. With gamma = lambda = 1 every token of a response gets its centred score.

``grpo`` uses TorchRL's :class:`~torchrl.objectives.llm.MCAdvantage`, which computes exactly that
group normalisation; the others are one line each on the ``[prompts, G]`` view of the rewards.
Every estimator trains through the same :class:`~orz_rl.ppo.losses.TokenClipPPOLoss`: TorchRL's
``GRPOLoss`` has the same clipped surrogate but reads the layout of TorchRL's LLM wrappers
(``("tokens", "full")``, ``("log_probs", "full")``), not the packed actor orz-rl trains.
Only ``gae`` needs a critic (``PPOConfig.learns_critic``): with any other estimator none is built,
loaded, stepped or saved.
"""

from __future__ import annotations

from typing import get_args

import torch
from tensordict import TensorDict
from torchrl.objectives.llm import MCAdvantage
from torchrl.objectives.value import GAE

from orz_rl import keys
from orz_rl.config import AdvantageEstimator
from orz_rl.ppo.advantages import compute_advantages, make_gae, set_next_values, set_token_rewards
from orz_rl.ppo.kl import KLEstimator, penalise_token_rewards

Estimator = AdvantageEstimator


def groups(reward: torch.Tensor, group_size: int) -> torch.Tensor:
    """The rewards ``[N]`` as ``[N / G, G]``: one row per prompt (its samples are adjacent)."""
    if group_size < 1 or reward.numel() % group_size:
        raise ValueError(f"{reward.numel()} responses do not form groups of {group_size} samples per prompt")
    return reward.reshape(-1, group_size)


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
    out = MCAdvantage(grpo_size=group_size, prompt_key="group").inv(steps)
    advantage = torch.empty(n)
    advantage[out.get("index").reshape(-1)] = out.get("advantage").reshape(-1)
    return advantage


def mean_centred(reward: torch.Tensor, group_size: int) -> torch.Tensor:
    """Dr. GRPO (and ORZ's ``use_grpo``): each reward minus its group's mean."""
    g = groups(reward.float(), group_size)
    return (g - g.mean(-1, keepdim=True)).reshape(-1)


def leave_one_out(reward: torch.Tensor, group_size: int) -> torch.Tensor:
    """RLOO: each reward minus the mean of the other ``G - 1`` rewards of its group."""
    if group_size < 2:
        raise ValueError("RLOO needs at least 2 samples per prompt (rollout.samples_per_prompt)")
    g = groups(reward.float(), group_size)
    return (g - (g.sum(-1, keepdim=True) - g) / (group_size - 1)).reshape(-1)


_RESPONSE_SCORES = {"grpo": grpo_scores, "dr_grpo": mean_centred, "rloo": leave_one_out}

#: Every estimator's name, in the order of the list above.
ESTIMATORS: tuple[str, ...] = get_args(AdvantageEstimator)


def estimate_advantages(
    batch: TensorDict,
    estimator: Estimator,
    gae: GAE,
    *,
    group_size: int,
    normalize: bool = True,
    reward_clip: float = 10.0,
    kl_penalty: tuple[float, KLEstimator] | None = None,
) -> TensorDict:
    """Fill ``advantage`` (and, for ``gae``, the critic's ``value_target``) of ``batch``.

    ``gae`` reads ``state_value`` (the critic's) and runs ``gae``, the run's TorchRL GAE; the others
    read only ``episode_reward``, ``orz_grpo`` and ``reinforce_pp`` through a GAE with no values.
    ``kl_penalty = (coef, estimator)`` subtracts the KL to the reference from every token's reward
    first (:mod:`orz_rl.ppo.kl`; the estimators with token rewards only)."""
    if kl_penalty is not None and estimator in _RESPONSE_SCORES:
        raise ValueError(f"{estimator} scores whole responses: a KL penalty has no token rewards to go into")
    if estimator == "gae":
        set_token_rewards(batch, reward_clip)
        if kl_penalty is not None:
            penalise_token_rewards(batch, *kl_penalty)
        set_next_values(batch)
        return compute_advantages(batch, gae, normalize=normalize)
    if estimator not in ESTIMATORS:
        raise ValueError(
            f"unknown advantage estimator {estimator!r}; expected one of {', '.join(ESTIMATORS)}"
        )
    reward = batch.get(keys.EPISODE_REWARD).float().clamp(-reward_clip, reward_clip)
    mask = batch.get(keys.RESPONSE_MASK)
    if estimator in _RESPONSE_SCORES:
        score = _RESPONSE_SCORES[estimator](reward, group_size)
        batch.set(keys.ADVANTAGE, torch.where(mask, score[:, None], 0.0).unsqueeze(-1))
        return batch
    # REINFORCE++: the plain return from each token on (lambda 1, whatever the run's); ORZ's GRPO:
    # its centred scores through its own GAE. Neither has values: a critic that predicts 0.
    if estimator == "orz_grpo":
        reward = mean_centred(reward, group_size)
    else:
        gae = make_gae(float(gae.gamma), 1.0)
    steps = batch.select(keys.RESPONSE_MASK).set(keys.EPISODE_REWARD, reward)
    steps.set(keys.STATE_VALUE, torch.zeros(*mask.shape, 1))
    set_token_rewards(steps, reward_clip)
    if kl_penalty is not None:
        steps.update(batch.select(keys.ACTION_LOG_PROB, keys.REF_LOG_PROB))
        penalise_token_rewards(steps, *kl_penalty)
    set_next_values(steps)
    compute_advantages(steps, gae, normalize=normalize or estimator == "reinforce_pp")
    batch.set(keys.ADVANTAGE, steps.get(keys.ADVANTAGE))
    return batch
