"""The advantage estimators against hand-written references, response by response and token by token."""

from __future__ import annotations

import math
import statistics

import pytest
import torch
from tensordict import TensorDict

from orz_rl import keys
from orz_rl.advantages.grpo import grpo_scores
from orz_rl.advantages.registry import ESTIMATORS, estimate_advantages
from orz_rl.advantages.rloo import leave_one_out
from orz_rl.advantages.token_gae import make_gae

G = 4


def _batch(rewards: list[float], lengths: list[int], width: int = 7) -> TensorDict:
    n = len(rewards)
    mask = torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]
    return TensorDict({keys.EPISODE_REWARD: torch.tensor(rewards), keys.RESPONSE_MASK: mask}, batch_size=[n])


def _random_groups(seed: int, groups: int = 6) -> tuple[list[float], list[int]]:
    g = torch.Generator().manual_seed(seed)
    rewards = torch.rand(groups * G, generator=g).tolist()
    rewards[:G] = [1.0] * G  # a group all right: no signal
    rewards[G : 2 * G] = [0.0, 1.0, 0.0, 0.0]  # ORZ's binary rewards
    lengths = torch.randint(1, 8, (groups * G,), generator=g).tolist()
    return rewards, lengths


def _per_response(rewards: list[float], fn) -> list[float]:
    """``fn(reward, the other rewards of its group, the whole group)`` for every response."""
    out = []
    for start in range(0, len(rewards), G):
        group = rewards[start : start + G]
        out += [fn(r, group[:i] + group[i + 1 :], group) for i, r in enumerate(group)]
    return out


def _normalised(per_token: list[list[float]]) -> list[list[float]]:
    flat = [a for row in per_token for a in row]
    mean, std = statistics.fmean(flat), statistics.pstdev(flat)
    return [[(a - mean) / (std + 1e-8) for a in row] for row in per_token]


def _reference(name: str, rewards: list[float], lengths: list[int], gamma: float) -> list[list[float]]:
    """Each valid token's advantage, written from each paper's definition."""
    if name == "grpo":
        score = _per_response(
            rewards, lambda r, _, g: (r - statistics.fmean(g)) / max(statistics.stdev(g), 1e-6)
        )
    elif name in ("dr_grpo", "orz_grpo"):
        score = _per_response(rewards, lambda r, _, g: r - statistics.fmean(g))
    elif name == "rloo":
        score = _per_response(rewards, lambda r, others, _: r - statistics.fmean(others))
    else:  # reinforce_pp: the discounted return from each token on
        return _normalised(
            [[gamma ** (n - 1 - t) * r for t in range(n)] for r, n in zip(rewards, lengths, strict=True)]
        )
    per_token = [[s] * n for s, n in zip(score, lengths, strict=True)]
    return _normalised(per_token) if name == "orz_grpo" else per_token


@pytest.mark.parametrize("name", [e for e in ESTIMATORS if e != "gae"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_critic_free_estimator_equals_its_paper_on_random_groups(name, seed):
    rewards, lengths = _random_groups(seed)
    gamma = 0.9 if name == "reinforce_pp" else 1.0
    batch = _batch(rewards, lengths)
    estimate_advantages(batch, name, make_gae(gamma, 1.0), group_size=G)
    advantage = batch.get(keys.ADVANTAGE).squeeze(-1)
    mask = batch.get(keys.RESPONSE_MASK)
    assert torch.equal(advantage[~mask], torch.zeros(int((~mask).sum()))), "padding must hold 0"
    expected = _reference(name, rewards, lengths, gamma)
    for i, row in enumerate(expected):
        torch.testing.assert_close(advantage[i, : lengths[i]], torch.tensor(row), atol=1e-5, rtol=1e-5)
    assert "state_value" not in batch.keys(), "a critic-free estimator reads and writes no values"


def test_gae_reads_the_critics_values_and_the_others_ignore_them():
    rewards, lengths = _random_groups(3)
    values = torch.randn(len(rewards), 7, 1)
    with_values = {}
    for name in ("gae", "grpo"):
        batch = _batch(rewards, lengths).set(keys.STATE_VALUE, values.clone())
        estimate_advantages(batch, name, make_gae(), group_size=G, normalize=False)
        with_values[name] = batch.get(keys.ADVANTAGE).squeeze(-1)
    # GAE at gamma = lambda = 1: the reward minus the token's value.
    mask = _batch(rewards, lengths).get(keys.RESPONSE_MASK)
    gae_ref = torch.where(mask, torch.tensor(rewards)[:, None] - values.squeeze(-1), 0.0)
    torch.testing.assert_close(with_values["gae"], gae_ref)
    plain = _batch(rewards, lengths)
    estimate_advantages(plain, "grpo", make_gae(), group_size=G)
    assert torch.equal(with_values["grpo"], plain.get(keys.ADVANTAGE).squeeze(-1))


def test_grpo_through_torchrls_mcadvantage_keeps_the_batch_order():
    # Groups whose means differ widely: a reordering would move advantages across groups.
    rewards = torch.tensor([0.0, 1.0, 2.0, 3.0, 10.0, 10.0, 11.0, 13.0])
    out = grpo_scores(rewards, 4)
    first = (rewards[:4] - rewards[:4].mean()) / rewards[:4].std()
    second = (rewards[4:] - rewards[4:].mean()) / rewards[4:].std()
    torch.testing.assert_close(out, torch.cat([first, second]))


def test_groups_that_do_not_divide_the_batch_and_rloo_alone_are_errors():
    batch = _batch([1.0, 0.0, 1.0], [2, 2, 2])
    with pytest.raises(ValueError, match="3 responses do not form groups of 2"):
        estimate_advantages(batch, "dr_grpo", make_gae(), group_size=2)
    with pytest.raises(ValueError, match="RLOO needs at least 2 samples per prompt"):
        leave_one_out(torch.tensor([1.0, 0.0]), 1)
    with pytest.raises(ValueError, match="unknown advantage estimator 'ppo'"):
        estimate_advantages(batch, "ppo", make_gae(), group_size=1)


def test_rloo_is_the_group_mean_baseline_scaled_by_g_over_g_minus_1():
    # Kool et al. 2019: R_i - mean_{j != i} R_j = G / (G - 1) (R_i - mean_j R_j).
    r = torch.tensor([0.0, 1.0, 1.0, 0.5, 3.0, -1.0])
    g = 3
    centred = (r.view(-1, g) - r.view(-1, g).mean(-1, keepdim=True)).reshape(-1)
    torch.testing.assert_close(leave_one_out(r, g), centred * g / (g - 1))
    assert not math.isclose(float(leave_one_out(r, g).abs().sum()), 0.0)


@pytest.mark.parametrize("name", [e for e in ESTIMATORS if e != "gae"])
def test_a_tools_output_inside_a_response_is_as_if_it_were_not_there(name):
    # Each response gets two tool tokens after its first token (where it has more than one):
    # the sampled tokens' advantages are those of the same responses without them, the tool's 0.
    rewards, lengths = _random_groups(seed=3)
    gamma = 0.9 if name == "reinforce_pp" else 1.0
    plain = _batch(rewards, lengths)
    estimate_advantages(plain, name, make_gae(gamma, 1.0), group_size=G)
    width = 9
    response = torch.arange(width)[None, :] < torch.tensor([n + 2 * (n > 1) for n in lengths])[:, None]
    tool = torch.zeros_like(response)
    tool[torch.tensor(lengths) > 1, 1:3] = True
    with_tool = TensorDict(
        {
            keys.EPISODE_REWARD: torch.tensor(rewards),
            keys.RESPONSE_MASK: response,
            keys.ASSISTANT_MASK: response & ~tool,
        },
        batch_size=[len(rewards)],
    )
    estimate_advantages(with_tool, name, make_gae(gamma, 1.0), group_size=G)
    advantage = with_tool.get(keys.ADVANTAGE).squeeze(-1)
    assert (advantage[tool] == 0).all()
    expected = plain.get(keys.ADVANTAGE).squeeze(-1)
    for i, n in enumerate(lengths):
        torch.testing.assert_close(
            advantage[i][response[i] & ~tool[i]], expected[i, :n], atol=1e-5, rtol=1e-5
        )
