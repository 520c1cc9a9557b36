"""GAE over padded response tokens and batch-level normalisation, against plain references."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.objectives.value import GAE

from orz_rl import keys
from orz_rl.advantages.token_gae import (
    TokenGAE,
    gae_advantages,
    make_gae,
    normalize_advantages,
    set_next_values,
    set_token_rewards,
    to_token_steps,
)


def _random_batch(n: int = 7, width: int = 13, seed: int = 0) -> TensorDict:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, width + 1, (n,), generator=g)
    lengths[0] = width  # one full-width row
    mask = torch.arange(width)[None] < lengths[:, None]
    return TensorDict(
        {
            keys.RESPONSE_MASK: mask,
            keys.EPISODE_REWARD: torch.randint(0, 2, (n,), generator=g).float(),
            # Garbage on padding on purpose: it must not leak into anything.
            keys.STATE_VALUE: torch.randn(n, width, 1, generator=g) * 3,
        },
        batch_size=[n],
    )


def _reverse_loop_gae(rewards: list[float], values: list[float], gamma: float, lmbda: float) -> list[float]:
    """Textbook GAE of one terminated episode, in plain Python."""
    adv, running = [0.0] * len(rewards), 0.0
    for t in reversed(range(len(rewards))):
        next_value = values[t + 1] if t + 1 < len(rewards) else 0.0
        delta = rewards[t] + gamma * next_value - values[t]
        running = delta + gamma * lmbda * running
        adv[t] = running
    return adv


@pytest.mark.parametrize("gamma,lmbda", [(1.0, 1.0), (0.9, 0.7)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gae_matches_reverse_loop_on_padded_batch(gamma, lmbda, seed):
    batch = _random_batch(seed=seed)
    values_before = batch.get(keys.STATE_VALUE).clone()
    set_token_rewards(batch)
    set_next_values(batch)
    gae_advantages(batch, make_gae(gamma, lmbda), normalize=False)
    mask = batch.get(keys.RESPONSE_MASK)
    adv = batch.get(keys.ADVANTAGE).squeeze(-1)
    for i in range(batch.shape[0]):
        n = int(mask[i].sum())
        rewards = [0.0] * (n - 1) + [float(batch.get(keys.EPISODE_REWARD)[i])]
        expected = _reverse_loop_gae(rewards, values_before[i, :n, 0].tolist(), gamma, lmbda)
        torch.testing.assert_close(adv[i, :n], torch.tensor(expected), atol=1e-6, rtol=0)
        assert (adv[i, n:] == 0).all(), "padding must get zero advantage"
        ret = batch.get(keys.VALUE_TARGET)[i, :n, 0]
        torch.testing.assert_close(ret, torch.tensor(expected) + values_before[i, :n, 0], atol=1e-6, rtol=0)


def test_gae_with_unit_gamma_lambda_is_reward_minus_value():
    batch = _random_batch(seed=5)
    values = batch.get(keys.STATE_VALUE).squeeze(-1).clone()
    set_token_rewards(batch)
    set_next_values(batch)
    gae_advantages(batch, make_gae(), normalize=False)
    mask = batch.get(keys.RESPONSE_MASK)
    expected = batch.get(keys.EPISODE_REWARD)[:, None] - values
    torch.testing.assert_close(batch.get(keys.ADVANTAGE).squeeze(-1)[mask], expected[mask], atol=1e-6, rtol=0)


class _Values(nn.Module):
    """V(s_t) = w (t + 1): a critic with a parameter, so that gradients could flow from it."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.25))

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        return (self.w * torch.arange(1, mask.shape[1] + 1)).expand(mask.shape).unsqueeze(-1)


def test_to_token_steps_makes_a_batch_ready_for_stock_gae_with_the_critics_values():
    batch = _random_batch(seed=4).exclude(keys.STATE_VALUE)
    critic = TensorDictModule(_Values(), in_keys=[keys.RESPONSE_MASK], out_keys=[keys.STATE_VALUE])
    steps = to_token_steps(batch, critic)
    assert steps.batch_size == batch.get(keys.RESPONSE_MASK).shape
    assert not steps.get(keys.STATE_VALUE).requires_grad  # advantages are targets: no gradient
    GAE(gamma=1.0, lmbda=1.0, value_network=None)(steps)
    mask = batch.get(keys.RESPONSE_MASK)
    assert torch.equal(batch.get(keys.LOSS_MASK).squeeze(-1), mask)  # where stock losses look
    for i in range(batch.shape[0]):
        n = int(mask[i].sum())
        rewards = [0.0] * (n - 1) + [float(batch.get(keys.EPISODE_REWARD)[i])]
        values = [0.25 * (t + 1) for t in range(n)]
        expected = torch.tensor(_reverse_loop_gae(rewards, values, 1.0, 1.0))
        torch.testing.assert_close(steps.get("advantage")[i, :n, 0], expected, atol=1e-6, rtol=0)
        assert (steps.get("advantage")[i, n:] == 0).all(), "padding must get zero advantage"


def test_token_rewards_sit_on_the_last_valid_token_only():
    batch = _random_batch(seed=3)
    batch.set(keys.EPISODE_REWARD, torch.full((7,), 25.0))
    set_token_rewards(batch, reward_clip=10.0)
    mask = batch.get(keys.RESPONSE_MASK)
    reward = batch.get(keys.REWARD).squeeze(-1)
    lengths = mask.sum(-1)
    for i, n in enumerate(lengths.tolist()):
        assert reward[i, n - 1] == 10.0, "rewards are clipped to [-10, 10]"
        assert reward[i].sum() == 10.0
    assert (batch.get(keys.DONE).squeeze(-1) == (reward != 0) | ~mask).all()


def test_advantage_normalisation_ignores_padding():
    g = torch.Generator().manual_seed(0)
    adv = torch.randn(6, 9, generator=g)
    mask = torch.arange(9)[None] < torch.tensor([9, 3, 5, 1, 7, 2])[:, None]
    out = normalize_advantages(adv, mask)
    valid = adv[mask]
    expected = (valid - valid.mean()) / valid.std(unbiased=False)
    torch.testing.assert_close(out[mask], expected, atol=1e-5, rtol=0)
    assert (out[~mask] == 0).all()
    poisoned = adv.masked_fill(~mask, 1e6)
    torch.testing.assert_close(normalize_advantages(poisoned, mask), out)


def _torchrl_path(gamma: float, lmbda: float) -> GAE:
    return GAE(gamma=gamma, lmbda=lmbda, value_network=None, vectorized=False)


def _segments(n: int, steps: int, seed: int) -> TensorDict:
    """Arbitrary episodes: dones anywhere, some terminated and some truncated, values everywhere."""
    g = torch.Generator().manual_seed(seed)
    done = torch.rand(n, steps, 1, generator=g) < 0.1
    return TensorDict(
        {
            "state_value": torch.randn(n, steps, 1, generator=g),
            "next": {
                "state_value": torch.randn(n, steps, 1, generator=g),
                "reward": torch.randn(n, steps, 1, generator=g),
                "done": done,
                "terminated": done & (torch.rand(n, steps, 1, generator=g) < 0.5),
            },
        },
        [n, steps],
    )


@pytest.mark.parametrize("seed", range(4))
def test_closed_form_equals_torchrls_recursion_on_any_segments(seed):
    """Dones mid-row with rewards after them: the closed form subtracts what lies past each end."""
    data = _segments(9, 64, seed)
    expected = _torchrl_path(1.0, 1.0)(data.clone())
    got = make_gae(1.0, 1.0)(data.clone())
    assert isinstance(make_gae(), TokenGAE)
    for key in ("advantage", "value_target"):
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_closed_form_equals_torchrls_recursion_on_orz_rows(seed):
    """One response per row then padding (the trainer's layout: the path without correction)."""
    batch = set_next_values(set_token_rewards(_random_batch(n=16, width=300, seed=seed)))
    fast, slow = batch.clone(), batch.clone()
    gae_advantages(fast, make_gae(1.0, 1.0), normalize=False)
    gae_advantages(slow, _torchrl_path(1.0, 1.0), normalize=False)
    for key in (keys.ADVANTAGE, keys.VALUE_TARGET):
        torch.testing.assert_close(fast.get(key), slow.get(key), rtol=0, atol=1e-5)


def test_other_gamma_and_lambda_take_torchrls_path():
    data = _segments(5, 40, 0)
    expected = _torchrl_path(0.9, 0.95)(data.clone())
    got = make_gae(0.9, 0.95)(data.clone())
    torch.testing.assert_close(got["advantage"], expected["advantage"])


# --- a multi-turn response: the tool's output between two turns is context, not steps --------

#: Row 0: turn one (3 tokens), the tool's output (2), turn two (2), padding (1). Row 1: one
#: turn of 4 tokens, then padding. Row 2: a tool's output right after turn one's single token.
_TOOL = torch.tensor(
    [
        [0, 0, 0, 1, 1, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0],
        [0, 1, 1, 1, 0, 0, 0, 0],
    ],
    dtype=torch.bool,
)
_LENGTHS = torch.tensor([7, 4, 6])


def _two_turn_batch(seed: int = 0) -> TensorDict:
    g = torch.Generator().manual_seed(seed)
    response = torch.arange(8)[None] < _LENGTHS[:, None]
    return TensorDict(
        {
            keys.RESPONSE_MASK: response,
            keys.ASSISTANT_MASK: response & ~_TOOL,
            keys.EPISODE_REWARD: torch.tensor([1.0, 0.0, 1.0]),
            # Garbage on the tool's output and on padding: neither may leak into anything.
            keys.STATE_VALUE: torch.randn(3, 8, 1, generator=g) * 3,
        },
        batch_size=[3],
    )


def _sampled_steps(batch: TensorDict, i: int) -> tuple[list[int], list[float], list[float]]:
    """Row ``i``'s sampled positions, by hand, with their rewards and values (reward on the last)."""
    positions = [t for t in range(8) if t < int(_LENGTHS[i]) and not bool(_TOOL[i, t])]
    rewards = [0.0] * (len(positions) - 1) + [float(batch.get(keys.EPISODE_REWARD)[i])]
    values = [float(batch.get(keys.STATE_VALUE)[i, t, 0]) for t in positions]
    return positions, rewards, values


@pytest.mark.parametrize("gamma,lmbda", [(1.0, 1.0), (0.9, 0.7)])
def test_gae_across_turns_runs_over_the_sampled_tokens_only(gamma, lmbda):
    batch = _two_turn_batch()
    expected = {i: _sampled_steps(batch, i) for i in range(3)}  # before the values are zeroed
    set_next_values(set_token_rewards(batch))
    gae_advantages(batch, make_gae(gamma, lmbda), normalize=False)
    advantage = batch.get(keys.ADVANTAGE).squeeze(-1)
    target = batch.get(keys.VALUE_TARGET).squeeze(-1)
    for i, (positions, rewards, values) in expected.items():
        reference = _reverse_loop_gae(rewards, values, gamma, lmbda)
        torch.testing.assert_close(advantage[i, positions], torch.tensor(reference), atol=1e-5, rtol=0)
        returns = [a + v for a, v in zip(reference, values, strict=True)]
        torch.testing.assert_close(target[i, positions], torch.tensor(returns), atol=1e-5, rtol=0)
        others = [t for t in range(8) if t not in positions]
        assert (advantage[i, others] == 0).all() and (target[i, others] == 0).all()
    reward = batch.get(keys.REWARD).squeeze(-1)
    assert reward[0, 6] == 1.0 and reward[2, 5] == 1.0 and reward.sum() == 2.0  # on the last sampled token
    assert torch.equal(batch.get(keys.LOSS_MASK).squeeze(-1), batch.get(keys.ASSISTANT_MASK))


def test_across_turns_v_next_is_the_value_before_the_next_sampled_token():
    batch = set_next_values(_two_turn_batch(seed=1))
    value = batch.get(keys.STATE_VALUE).squeeze(-1)
    nxt = batch.get(keys.NEXT_STATE_VALUE).squeeze(-1)
    assert nxt[0, 2] == value[0, 5], "turn one's last token looks past the tool's output"
    assert nxt[2, 0] == value[2, 4]
    assert nxt[0, 6] == 0 and nxt[1, 3] == 0 and nxt[2, 5] == 0, "0 after the last sampled token"
    assert (value[_TOOL] == 0).all() and (nxt[_TOOL] == 0).all()


def test_normalisation_across_turns_is_over_the_sampled_tokens_of_the_batch():
    batch = set_next_values(set_token_rewards(_two_turn_batch(seed=2)))
    gae_advantages(batch, make_gae(), normalize=True)
    raw = set_next_values(set_token_rewards(_two_turn_batch(seed=2)))
    gae_advantages(raw, make_gae(), normalize=False)
    mask = batch.get(keys.ASSISTANT_MASK)
    sampled = raw.get(keys.ADVANTAGE).squeeze(-1)[mask]
    expected = (sampled - sampled.mean()) / sampled.std(unbiased=False)
    torch.testing.assert_close(batch.get(keys.ADVANTAGE).squeeze(-1)[mask], expected)
    assert (batch.get(keys.ADVANTAGE).squeeze(-1)[~mask] == 0).all()


def test_a_single_turn_batch_is_not_reordered():
    from orz_rl.advantages.token_gae import assistant_first

    mask = torch.arange(8)[None] < _LENGTHS[:, None]
    assert assistant_first(mask) is None
    assert torch.equal(assistant_first(mask & ~_TOOL)[0, :5], torch.tensor([0, 1, 2, 5, 6]))
