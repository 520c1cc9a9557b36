"""TorchRL's ClipPPOLoss and the critic loss on padded token batches."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import (
    ProbabilisticTensorDictModule,
    ProbabilisticTensorDictSequential,
    TensorDictModule,
)
from torch import nn

from orz_rl import keys
from orz_rl.models.loading import load_causal_lm
from orz_rl.ppo.actor import make_training_actor
from orz_rl.ppo.losses import ClippedValueLoss, TokenClipPPOLoss, aggregate_token_loss

N, R, V = 4, 6, 11


class _LeafLogits(nn.Module):
    """Logits as a leaf parameter, so their gradient is inspectable per position."""

    def __init__(self) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.randn(N, R, V))

    def forward(self, action: torch.Tensor) -> torch.Tensor:
        return self.logits


def _actor(module: nn.Module) -> ProbabilisticTensorDictSequential:
    return ProbabilisticTensorDictSequential(
        TensorDictModule(module, in_keys=[keys.ACTION], out_keys=["logits"]),
        ProbabilisticTensorDictModule(
            in_keys=["logits"], out_keys=[keys.ACTION], distribution_class=torch.distributions.Categorical
        ),
    )


def _batch(seed: int = 0) -> TensorDict:
    g = torch.Generator().manual_seed(seed)
    mask = torch.arange(R)[None] < torch.tensor([6, 2, 4, 1])[:, None]
    return TensorDict(
        {
            keys.ACTION: torch.randint(0, V, (N, R), generator=g),
            keys.RESPONSE_MASK: mask,
            keys.ACTION_LOG_PROB: -torch.rand(N, R, generator=g) * 3,
            keys.ADVANTAGE: torch.randn(N, R, 1, generator=g).masked_fill(~mask[..., None], 0.0),
        },
        batch_size=[N],
    )


def test_clip_ppo_gradients_are_zero_on_padded_positions():
    module = _LeafLogits()
    loss = TokenClipPPOLoss(_actor(module))
    batch = _batch()
    # On-policy, as in ORZ's single step: ratio 1, so no valid token is clipped.
    logp = torch.log_softmax(module.logits.detach(), -1).gather(-1, batch[keys.ACTION][..., None])
    batch[keys.ACTION_LOG_PROB] = logp.squeeze(-1)
    out = loss(batch)
    out["loss_objective"].backward()
    grad = module.logits.grad.abs().sum(-1)
    mask = batch[keys.RESPONSE_MASK]
    assert (grad[~mask] == 0).all()
    assert (grad[mask] > 0).all()


def test_clip_ppo_loss_ignores_what_padding_holds():
    module = _LeafLogits()
    loss = TokenClipPPOLoss(_actor(module))
    batch = _batch()
    poisoned = batch.clone()
    mask = batch[keys.RESPONSE_MASK]
    poisoned[keys.ACTION_LOG_PROB] = batch[keys.ACTION_LOG_PROB].masked_fill(~mask, -1e4)
    poisoned[keys.ADVANTAGE] = batch[keys.ADVANTAGE].masked_fill(~mask[..., None], 1e4)
    torch.testing.assert_close(loss(batch)["loss_objective"], loss(poisoned)["loss_objective"])


def test_clip_ppo_objective_equals_hand_computed_surrogate():
    module = _LeafLogits()
    loss = TokenClipPPOLoss(_actor(module), clip_epsilon=0.2)
    batch = _batch(seed=1)
    mask = batch[keys.RESPONSE_MASK]
    logp = torch.log_softmax(module.logits.detach(), -1).gather(-1, batch[keys.ACTION][..., None]).squeeze(-1)
    ratio = (logp - batch[keys.ACTION_LOG_PROB]).exp()
    adv = batch[keys.ADVANTAGE].squeeze(-1)
    per_token = -torch.minimum(ratio * adv, ratio.clamp(0.8, 1.2) * adv)
    # ORZ: mean over each sequence's valid tokens, then over sequences.
    expected = torch.stack([per_token[i][mask[i]].mean() for i in range(N)]).mean()
    out = loss(batch)
    torch.testing.assert_close(out["loss_objective"], expected)
    clipped = ((ratio < 0.8) | (ratio > 1.2)) & mask
    torch.testing.assert_close(out["clip_fraction"], clipped.sum() / mask.sum())


def test_clip_higher_clips_the_ratio_to_1_minus_low_and_1_plus_high():
    """DAPO's clip-higher against a hand-written surrogate: ratios placed around both bounds, both
    signs of advantage; a token at ratio 1.25 with a positive advantage still learns under
    (0.2, 0.28), and is clipped (no gradient) under the symmetric 0.2."""
    module = _LeafLogits()
    batch = _batch(seed=2)
    mask = batch[keys.RESPONSE_MASK]
    logp = torch.log_softmax(module.logits.detach(), -1).gather(-1, batch[keys.ACTION][..., None]).squeeze(-1)
    ratio = torch.tensor([0.7, 0.85, 1.1, 1.25, 1.3, 1.25]).repeat(N, 1)
    adv = torch.tensor([1.0, -1.0, 1.0, 1.0, 1.0, -1.0]).repeat(N, 1)
    batch[keys.ACTION_LOG_PROB] = logp - ratio.log()
    batch[keys.ADVANTAGE] = adv.unsqueeze(-1).masked_fill(~mask[..., None], 0.0)
    out = TokenClipPPOLoss(_actor(module), clip_epsilon=(0.2, 0.28))(batch)
    per_token = -torch.minimum(ratio * adv, ratio.clamp(0.8, 1.28) * adv)
    expected = torch.stack([per_token[i][mask[i]].mean() for i in range(N)]).mean()
    torch.testing.assert_close(out["loss_objective"], expected)
    clipped = ((ratio < 0.8 - 1e-4) | (ratio > 1.28 + 1e-4)) & mask
    torch.testing.assert_close(out["clip_fraction"], clipped.sum() / mask.sum())
    out["loss_objective"].backward()
    higher = module.logits.grad.abs().sum(-1)
    module.logits.grad = None
    TokenClipPPOLoss(_actor(module), clip_epsilon=0.2)(batch)["loss_objective"].backward()
    symmetric = module.logits.grad.abs().sum(-1)
    assert higher[0, 3] > 0 and symmetric[0, 3] == 0, "ratio 1.25, advantage > 0"
    assert higher[0, 4] == 0 and symmetric[0, 4] == 0, "ratio 1.3 is past both"
    assert higher[0, 5] > 0 and symmetric[0, 5] > 0, "a negative advantage is never clipped above"


def test_aggregation_modes_over_micro_batches_equal_full_batch():
    g = torch.Generator().manual_seed(0)
    loss = torch.randn(8, 5, generator=g)
    mask = torch.arange(5)[None] < torch.randint(1, 6, (8, 1), generator=g)
    for mode in ("seq-mean-token-mean", "token-mean"):
        full = aggregate_token_loss(loss, mask, mode)
        n_tok = int(mask.sum())
        parts = sum(
            aggregate_token_loss(loss[i : i + 3], mask[i : i + 3], mode, num_sequences=8, num_tokens=n_tok)
            for i in range(0, 8, 3)
        )
        torch.testing.assert_close(parts, full)
    flat = aggregate_token_loss(loss, mask, "token-mean")
    torch.testing.assert_close(flat, loss[mask].mean())


def test_dr_grpo_divides_every_sequence_by_the_same_budget_not_its_length():
    g = torch.Generator().manual_seed(1)
    loss = torch.randn(8, 5, generator=g)
    mask = torch.arange(5)[None] < torch.randint(1, 6, (8, 1), generator=g)
    budget = 32
    full = aggregate_token_loss(loss, mask, "seq-mean-token-sum-norm", norm_tokens=budget)
    by_hand = sum(sum(loss[i, j] for j in range(5) if mask[i, j]) / budget for i in range(8)) / 8
    torch.testing.assert_close(full, by_hand)
    parts = sum(
        aggregate_token_loss(
            loss[i : i + 3], mask[i : i + 3], "seq-mean-token-sum-norm", num_sequences=8, norm_tokens=budget
        )
        for i in range(0, 8, 3)
    )
    torch.testing.assert_close(parts, full)
    # The length-normalised mean weights a short sequence's tokens more: not the same number.
    assert not torch.allclose(full, aggregate_token_loss(loss, mask, "seq-mean-token-mean"))


class _LeafValues(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.values = nn.Parameter(torch.randn(N, R, 1))

    def forward(self, action: torch.Tensor) -> torch.Tensor:
        return self.values


def test_clipped_value_loss_matches_orz_formula_and_masks_padding():
    head = _LeafValues()
    critic = TensorDictModule(head, in_keys=[keys.ACTION], out_keys=[keys.STATE_VALUE])
    loss = ClippedValueLoss(critic, clip_value=0.2, coeff=0.5)
    batch = _batch()
    mask = batch[keys.RESPONSE_MASK]
    old = head.values.detach() + torch.randn(N, R, 1) * 0.5
    target = torch.randn(N, R, 1)
    batch[keys.STATE_VALUE] = old
    batch[keys.VALUE_TARGET] = target
    out = loss(batch)
    v = head.values.detach().squeeze(-1)
    o, t = old.squeeze(-1), target.squeeze(-1)
    v_clip = o + (v - o).clamp(-0.2, 0.2)
    per_token = 0.5 * torch.maximum((v_clip - t) ** 2, (v - t) ** 2)
    expected = torch.stack([per_token[i][mask[i]].mean() for i in range(N)]).mean()
    torch.testing.assert_close(out["loss_critic"], expected)
    assert torch.equal(batch[keys.STATE_VALUE], old), "V_old must not be overwritten by the critic"
    out["loss_critic"].backward()
    assert (head.values.grad.squeeze(-1)[~mask] == 0).all()


def _rollout_like(vocab: int, n: int = 24, prompt: int = 30, response: int = 20) -> TensorDict:
    """Left-padded prompts, right-padded responses of random lengths, normalised-looking advantages."""
    g = torch.Generator().manual_seed(0)
    prompt_len = torch.randint(5, prompt + 1, (n,), generator=g)
    response_len = torch.randint(1, response + 1, (n,), generator=g)
    mask = torch.arange(response)[None] < response_len[:, None]
    return TensorDict(
        {
            keys.PROMPT_TOKENS: torch.randint(2, vocab, (n, prompt), generator=g),
            keys.PROMPT_MASK: torch.arange(prompt)[None] >= (prompt - prompt_len)[:, None],
            keys.ACTION: torch.randint(2, vocab, (n, response), generator=g),
            keys.RESPONSE_MASK: mask,
            keys.ADVANTAGE: torch.randn(n, response, 1, generator=g).masked_fill(~mask[..., None], 0.0),
        },
        [n],
    )


def _accumulated_grads(model, loss: TokenClipPPOLoss, batch: TensorDict, micro: int = 8) -> dict:
    """The update's gradient: micro-batches of ``micro`` sequences, each loss divided by the whole
    batch's counts (``orz_rl.ppo.update.optimise``)."""
    model.zero_grad(set_to_none=True)
    n, n_tok = batch.shape[0], int(batch[keys.RESPONSE_MASK].sum())
    for i in range(0, n, micro):
        loss(batch[i : i + micro], num_sequences=n, num_tokens=n_tok)["loss_objective"].backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("pack_tokens", [0, 64], ids=["padded", "packed"])
def test_the_update_gives_the_same_gradient_with_old_log_probs_from_its_own_pass(tiny_model_dir, pack_tokens):
    model = load_causal_lm(str(tiny_model_dir)).eval()
    actor = make_training_actor(model, pack_tokens)
    batch = _rollout_like(model.config.vocab_size)
    # The separate pass, as the trainer runs it: before the update, over other rows than the
    # update's micro-batches (so its sums run in another order).
    with torch.no_grad():
        old = actor.get_dist(batch).log_prob(batch[keys.ACTION])
    with_pass = _accumulated_grads(model, TokenClipPPOLoss(actor), batch.set(keys.ACTION_LOG_PROB, old))
    own = TokenClipPPOLoss(actor, on_policy_without_old_log_probs=True)
    without = _accumulated_grads(model, own, batch.exclude(keys.ACTION_LOG_PROB))
    assert with_pass.keys() == without.keys() and len(without) == len(list(model.parameters()))

    def largest_relative_difference(grads: dict) -> float:
        return max(float((grads[n] - g).norm() / g.norm()) for n, g in with_pass.items())

    # Padded: the same numbers. Packed: the two passes sum in another order (measured ~1e-6).
    assert largest_relative_difference(without) <= 1e-5
    # The bound tells gradients apart: old log-probs 1 % off (ratio 1.01) move them by ~1e-2.
    off = _accumulated_grads(model, TokenClipPPOLoss(actor), batch.set(keys.ACTION_LOG_PROB, old - 0.01))
    assert largest_relative_difference(off) > 1e-3


def test_a_batch_without_old_log_probs_is_an_error_unless_the_loss_takes_its_own():
    module = _LeafLogits()
    batch = _batch().exclude(keys.ACTION_LOG_PROB)
    with pytest.raises(KeyError, match="action_log_prob"):
        TokenClipPPOLoss(_actor(module))(batch)
    out = TokenClipPPOLoss(_actor(module), on_policy_without_old_log_probs=True)(batch)
    assert out["clip_fraction"] == 0 and out["approx_kl"] == 0


# --- a multi-turn response: the tool's output is masked out of every term -------------------

#: Tool-output tokens inside the responses of :func:`_batch` (lengths 6, 2, 4, 1).
_TOOL = torch.zeros(N, R, dtype=torch.bool)
_TOOL[0, 2:4] = True
_TOOL[2, 1] = True


def _two_turn_batch(module: _LeafLogits) -> TensorDict:
    """:func:`_batch` with a tool's output inside two responses, and garbage in every input there."""
    batch = _batch(seed=2)
    response = batch[keys.RESPONSE_MASK]
    sampled = response & ~_TOOL
    batch[keys.ASSISTANT_MASK] = sampled
    g = torch.Generator().manual_seed(5)
    logp = torch.log_softmax(module.logits.detach(), -1).gather(-1, batch[keys.ACTION][..., None]).squeeze(-1)
    batch[keys.ACTION_LOG_PROB] = torch.where(_TOOL, -1e4, logp + 0.3 * torch.randn(N, R, generator=g))
    batch[keys.GENERATION_LOG_PROB] = torch.where(_TOOL, 50.0, batch[keys.ACTION_LOG_PROB] - 0.1)
    batch[keys.REF_LOG_PROB] = torch.where(_TOOL, -1e4, logp - 0.2 * torch.rand(N, R, generator=g))
    batch[keys.ADVANTAGE] = batch[keys.ADVANTAGE].masked_fill(_TOOL[..., None], 1e4)
    return batch


def test_the_policy_loss_its_entropy_kl_and_metrics_count_the_sampled_tokens_only():
    module = _LeafLogits()
    loss = TokenClipPPOLoss(_actor(module), clip_epsilon=0.2, entropy_coef=0.01, kl_coef=0.5)
    batch = _two_turn_batch(module)
    sampled = batch[keys.ASSISTANT_MASK]
    out = loss(batch)
    logits = module.logits.detach()
    logp = torch.log_softmax(logits, -1).gather(-1, batch[keys.ACTION][..., None]).squeeze(-1)
    ratio = (logp - batch[keys.ACTION_LOG_PROB]).exp()
    adv = batch[keys.ADVANTAGE].squeeze(-1)
    surrogate = -torch.minimum(ratio * adv, ratio.clamp(0.8, 1.2) * adv)
    entropy = torch.distributions.Categorical(logits=logits).entropy()
    log_ratio = logp - batch[keys.REF_LOG_PROB]
    k3 = torch.expm1(-log_ratio) + log_ratio

    def by_hand(per_token: torch.Tensor) -> torch.Tensor:  # each sequence's sampled tokens, then sequences
        return torch.stack([per_token[i][sampled[i]].mean() for i in range(N)]).mean()

    torch.testing.assert_close(out["loss_objective"], by_hand(surrogate))
    torch.testing.assert_close(out["loss_entropy"], by_hand(-0.01 * entropy))
    torch.testing.assert_close(out["loss_kl"], 0.5 * by_hand(k3))
    torch.testing.assert_close(out["kl_ref"], k3[sampled].mean())
    clipped = ((ratio < 0.8) | (ratio > 1.2)) & sampled
    torch.testing.assert_close(out["clip_fraction"], clipped.sum() / sampled.sum())
    d = batch[keys.ACTION_LOG_PROB][sampled] - batch[keys.GENERATION_LOG_PROB][sampled]
    mismatch = loss.mismatch.take()
    assert mismatch["rollout/logprob_abs_diff_max"] == pytest.approx(d.abs().max().item())
    sum(v for k, v in out.items() if k.startswith("loss_")).backward()
    grad = module.logits.grad.abs().sum(-1)
    assert (grad[_TOOL] == 0).all() and (grad[sampled] > 0).all()


def test_the_value_loss_counts_the_sampled_tokens_only():
    head = _LeafValues()
    critic = TensorDictModule(head, in_keys=[keys.ACTION], out_keys=[keys.STATE_VALUE])
    batch = _batch(seed=3)
    sampled = batch[keys.RESPONSE_MASK] & ~_TOOL
    batch[keys.ASSISTANT_MASK] = sampled
    old = head.values.detach() + torch.randn(N, R, 1) * 0.5
    target = torch.randn(N, R, 1).masked_fill(_TOOL[..., None], 1e4)
    batch[keys.STATE_VALUE], batch[keys.VALUE_TARGET] = old, target
    out = ClippedValueLoss(critic, clip_value=0.2, coeff=0.5)(batch)
    v, o, t = head.values.detach().squeeze(-1), old.squeeze(-1), target.squeeze(-1)
    per_token = 0.5 * torch.maximum((o + (v - o).clamp(-0.2, 0.2) - t) ** 2, (v - t) ** 2)
    expected = torch.stack([per_token[i][sampled[i]].mean() for i in range(N)]).mean()
    torch.testing.assert_close(out["loss_critic"], expected)
    out["loss_critic"].backward()
    assert (head.values.grad.squeeze(-1)[_TOOL] == 0).all()
