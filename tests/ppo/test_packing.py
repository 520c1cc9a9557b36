"""Sample packing: the actor's log-probs and the critic's values equal the padded batch's."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict

from orz_rl import keys
from orz_rl.models.loading import load_causal_lm
from orz_rl.ppo.actor import make_training_actor
from orz_rl.ppo.critic import Critic, make_value_operator
from orz_rl.ppo.packing import balanced_rows, pack, pad_shares


@pytest.mark.parametrize("seed", range(5))
def test_rows_place_every_sequence_once_within_the_budget_evenly_filled(seed):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 60, (50,), generator=g).tolist() + [80]  # one over the budget
    rows = balanced_rows(lengths, budget=64)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert [len(lengths) - 1] in rows  # the long one alone
    fills = [sum(lengths[i] for i in row) for row in rows if row != [len(lengths) - 1]]
    assert max(fills) <= 64
    # Padded to the fullest row, so the rows are as full as each other: no nearly empty last row.
    assert max(fills) - min(fills) < max(lengths[:-1])


def test_uniform_sequences_pack_with_almost_no_padding():
    """The CPU default's shape: 64 sequences of 29-30 tokens. First fit would leave one sequence
    alone in a last row padded to full width (12 % padding); the balanced rows do not."""
    lengths = [29 + (i % 2) for i in range(64)]
    for budget in (120, 288):
        rows = balanced_rows(lengths, budget)
        width = max(sum(lengths[i] for i in row) for row in rows)
        assert 1 - sum(lengths) / (len(rows) * width) < 0.05


def _batch(vocab: int, n: int = 24, prompt: int = 30, response: int = 20, seed: int = 0) -> TensorDict:
    """Left-padded prompts and right-padded responses of random lengths (one empty response)."""
    g = torch.Generator().manual_seed(seed)
    prompt_len = torch.randint(5, prompt + 1, (n,), generator=g)
    response_len = torch.randint(0, response + 1, (n,), generator=g)
    response_len[0] = 0
    return TensorDict(
        {
            keys.PROMPT_TOKENS: torch.randint(2, vocab, (n, prompt), generator=g),
            keys.PROMPT_MASK: torch.arange(prompt)[None] >= (prompt - prompt_len)[:, None],
            keys.ACTION: torch.randint(2, vocab, (n, response), generator=g),
            keys.RESPONSE_MASK: torch.arange(response)[None] < response_len[:, None],
        },
        [n],
    )


def test_packed_rows_hold_each_sequence_whole_with_positions_restarting():
    b = _batch(500)
    packed = pack(b[keys.PROMPT_TOKENS], b[keys.PROMPT_MASK], b[keys.ACTION], b[keys.RESPONSE_MASK], 64)
    assert packed.input_ids.shape[1] <= 64
    valid = int(b[keys.PROMPT_MASK].sum() + b[keys.RESPONSE_MASK].sum())
    starts = int((packed.position_ids == 0).sum())
    # Every sequence starts at position 0; so does each row's padded tail, where there is one.
    assert len(b) <= starts <= len(b) + packed.input_ids.shape[0]
    assert packed.source.numel() == int(b[keys.RESPONSE_MASK].sum())
    assert packed.tokens < b[keys.PROMPT_MASK].numel() + b[keys.RESPONSE_MASK].numel()
    assert packed.tokens >= valid


@pytest.mark.parametrize("budget", [50, 64, 200])
def test_packed_log_probs_and_values_equal_the_padded_batchs(tiny_model_dir, budget):
    torch.manual_seed(0)
    model = load_causal_lm(str(tiny_model_dir)).eval()
    critic = Critic.from_pretrained(str(tiny_model_dir)).eval()
    b = _batch(model.config.vocab_size)
    mask = b[keys.RESPONSE_MASK]
    with torch.no_grad():
        padded_lp = make_training_actor(model).get_dist(b).log_prob(b[keys.ACTION])
        packed_lp = make_training_actor(model, budget).get_dist(b).log_prob(b[keys.ACTION])
        value = make_value_operator(critic)
        padded_v = value(b.clone(False))[keys.STATE_VALUE]
        critic.pack_tokens = budget
        packed_v = value(b.clone(False))[keys.STATE_VALUE]
    # Log-probs to 1e-5; values (ORZ's value head makes them ~10-30 at the start) to 1e-5 of
    # their size: the same float32 sums in another order.
    torch.testing.assert_close(packed_lp[mask], padded_lp[mask], rtol=0, atol=1e-5)
    torch.testing.assert_close(packed_v[mask], padded_v[mask], rtol=1e-5, atol=1e-5)
    # Gradients flow through the packed path to every parameter that the padded path reaches.
    loss = make_training_actor(model, budget).get_dist(b).log_prob(b[keys.ACTION])[mask].sum()
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_pad_share_of_packed_rows_is_below_that_of_padding_to_the_longest():
    b = _batch(500, n=64)
    padded, packed = pad_shares(b[keys.PROMPT_MASK], b[keys.RESPONSE_MASK], micro_batch_size=64, budget=50)
    assert packed < padded
    valid = int(b[keys.PROMPT_MASK].sum() + b[keys.RESPONSE_MASK].sum())
    assert padded == pytest.approx(1 - valid / (64 * 50))
