"""DAPO's overlong handling: the soft penalty and the filter, against hand-written references."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict

from orz_rl import keys
from orz_rl.ppo.losses import TokenClipPPOLoss
from orz_rl.rewards.overlong import overlong_penalty, shape_overlong
from tests.ppo.test_losses import _actor, _batch, _LeafLogits

LIMIT, BUFFER = 20, 5


def _dapo_r_length(length: int) -> float:
    """DAPO's eq. 13, as the paper writes it (L_max = LIMIT, L_cache = BUFFER)."""
    if length <= LIMIT - BUFFER:
        return 0.0
    if length <= LIMIT:
        return ((LIMIT - BUFFER) - length) / BUFFER
    return -1.0


def test_the_penalty_is_dapos_eq_13_zero_then_linear_to_minus_one_at_the_limit():
    lengths = list(range(0, LIMIT + 3))
    expected = torch.tensor([_dapo_r_length(n) for n in lengths])
    torch.testing.assert_close(overlong_penalty(torch.tensor(lengths), LIMIT, BUFFER), expected)
    assert overlong_penalty(torch.tensor([16, 18, 20]), LIMIT, BUFFER).tolist() == pytest.approx(
        [-0.2, -0.6, -1]
    )
    with pytest.raises(ValueError, match="1 to 20 tokens"):
        overlong_penalty(torch.tensor([1]), LIMIT, LIMIT + 1)


def _scored_batch() -> TensorDict:
    """Four responses of 6, 2, 4 and 1 tokens (widths as in tests/ppo/test_losses.py), scored 1, 0,
    1, 0; the first and the third were cut by the limit."""
    batch = _batch(seed=3)
    batch[keys.EPISODE_REWARD] = torch.tensor([1.0, 0.0, 1.0, 0.0])
    batch[keys.RESPONSE_LENGTH] = batch[keys.RESPONSE_MASK].sum(-1)
    batch[keys.STOPPED] = torch.tensor([False, True, False, True])
    return batch


def _r(length: int, limit: int, buffer: int) -> float:
    """DAPO's R_length for another limit and buffer."""
    return min(max((limit - buffer - length) / buffer, -1.0), 0.0)


def test_shaping_adds_the_penalty_to_the_reward_trained_on_and_keeps_the_envs_as_score():
    batch = _scored_batch()
    figures = shape_overlong(batch, limit=6, penalty=4)  # no penalty up to 2 tokens, -1 at 6
    expected = [1.0 + _r(6, 6, 4), 0.0, 1.0 + _r(4, 6, 4), 0.0]
    assert batch[keys.EPISODE_REWARD].tolist() == pytest.approx(expected)
    assert expected == pytest.approx([0.0, 0.0, 0.5, 0.0])
    assert batch[keys.SCORE].tolist() == [1.0, 0.0, 1.0, 0.0] and keys.score(batch) is batch[keys.SCORE]
    assert figures["reward/overlong_penalised_share"] == 0.5
    assert figures["reward/overlong_penalty_mean"] == pytest.approx(-1.5 / 4)
    assert figures["reward/shaped_mean"] == pytest.approx(0.125)
    assert keys.ASSISTANT_MASK not in batch.keys(), "the penalty alone masks nothing"


def test_with_neither_knob_the_batch_is_left_as_it_is():
    batch = _scored_batch()
    before = batch.clone()
    assert shape_overlong(batch, limit=6) == {}
    assert set(batch.keys()) == set(before.keys())
    assert (batch == before).all()


def test_filtered_responses_are_out_of_the_policy_loss_and_its_gradient():
    """On policy (ratio 1) the token-mean objective is minus the mean advantage over the tokens
    trained on: with the filter, over the stopped responses' tokens only."""
    module = _LeafLogits()
    batch = _scored_batch()
    logp = torch.log_softmax(module.logits.detach(), -1).gather(-1, batch[keys.ACTION][..., None])
    batch[keys.ACTION_LOG_PROB] = logp.squeeze(-1)
    figures = shape_overlong(batch, limit=6, mask_truncated=True)
    assert figures == {"reward/overlong_filtered_share": 0.5}
    mask, stopped = batch[keys.RESPONSE_MASK], batch[keys.STOPPED]
    assert torch.equal(batch[keys.ASSISTANT_MASK], mask & stopped[:, None])
    advantage = batch[keys.ADVANTAGE].squeeze(-1)
    expected = -torch.cat([advantage[i][mask[i]] for i in range(4) if stopped[i]]).mean()
    out = TokenClipPPOLoss(_actor(module), aggregation="token-mean")(batch)
    torch.testing.assert_close(out["loss_objective"], expected)
    out["loss_objective"].backward()
    grad = module.logits.grad.abs().sum(-1)
    assert (grad[~stopped] == 0).all(), "a truncated response teaches nothing"
    assert (grad[stopped][mask[stopped]] > 0).all()
