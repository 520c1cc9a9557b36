"""The actor's log-probs and entropies, computed a chunk of response tokens at a time, equal a
``Categorical`` over the full logits, in value and gradient, and its distribution refuses what it
does not know."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict

from orz_rl import keys
from orz_rl.models.loading import load_causal_lm
from orz_rl.ppo.actor import make_training_actor
from orz_rl.ppo.token_log_probs import token_log_probs


def _head_and_inputs(tokens: int = 37, hidden: int = 16, vocab: int = 50):
    g = torch.Generator().manual_seed(0)
    head = torch.nn.Linear(hidden, vocab, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.randn(vocab, hidden, generator=g))
    states = torch.randn(tokens, hidden, generator=g, requires_grad=True)
    return head, states, torch.randint(0, vocab, (tokens,), generator=g)


@pytest.mark.parametrize("chunk", [0, 5, 37, 64])
def test_chunked_log_probs_and_entropies_equal_a_categorical_over_the_full_logits(chunk):
    head, states, tokens = _head_and_inputs()
    reference = torch.distributions.Categorical(logits=head(states))
    expected_lp, expected_h = reference.log_prob(tokens), reference.entropy()
    (expected_lp.sum() + expected_h.sum()).backward()
    expected_grads = states.grad.clone(), head.weight.grad.clone()
    states.grad = head.weight.grad = None

    log_prob, entropy = token_log_probs(head, states, tokens, chunk, with_entropy=True)
    (log_prob.sum() + entropy.sum()).backward()

    torch.testing.assert_close(log_prob, expected_lp)
    torch.testing.assert_close(entropy, expected_h)
    torch.testing.assert_close(states.grad, expected_grads[0])
    torch.testing.assert_close(head.weight.grad, expected_grads[1])


def test_chunks_are_recomputed_in_the_backward_so_no_logits_are_saved():
    head, states, tokens = _head_and_inputs(tokens=40, vocab=1000)
    saved = []

    def pack(t):
        saved.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        token_log_probs(head, states, tokens, chunk_tokens=10)
    # Each checkpointed chunk keeps its inputs (a slice of the states, the tokens), no logits:
    # 40 x 1000 of them would be 40,000 elements.
    assert saved and max(saved) < 1000
    saved.clear()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        token_log_probs(head, states, tokens, chunk_tokens=0)
    assert max(saved) == 40 * 1000


def _batch(vocab: int) -> TensorDict:
    g = torch.Generator().manual_seed(0)
    n, prompt, response = 3, 6, 9
    mask = torch.ones(n, response, dtype=torch.bool)
    mask[1, 4:] = False
    prompt_mask = torch.ones(n, prompt, dtype=torch.bool)
    prompt_mask[2, :2] = False
    return TensorDict(
        {
            keys.PROMPT_TOKENS: torch.randint(2, vocab, (n, prompt), generator=g),
            keys.PROMPT_MASK: prompt_mask,
            keys.ACTION: torch.randint(2, vocab, (n, response), generator=g),
            keys.RESPONSE_MASK: mask,
        },
        [n],
    )


def test_training_actor_log_probs_equal_the_models_own_logits_with_and_without_chunks(tiny_model_dir):
    model = load_causal_lm(str(tiny_model_dir)).eval()
    batch = _batch(model.config.vocab_size)
    ids = torch.cat([batch[keys.PROMPT_TOKENS], batch[keys.ACTION]], -1)
    mask = torch.cat([batch[keys.PROMPT_MASK], batch[keys.RESPONSE_MASK]], -1).long()
    with torch.no_grad():
        positions = (mask.cumsum(-1) - 1).clamp_min(0)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
    p, r = batch[keys.PROMPT_TOKENS].shape[-1], batch[keys.ACTION].shape[-1]
    reference = torch.distributions.Categorical(logits=logits[:, p - 1 : p - 1 + r].float())
    valid = batch[keys.RESPONSE_MASK]
    for chunk in (0, 4):
        dist = make_training_actor(model, chunk_tokens=chunk, with_entropy=True).get_dist(batch)
        log_prob = dist.log_prob(batch[keys.ACTION])
        torch.testing.assert_close(log_prob[valid], reference.log_prob(batch[keys.ACTION])[valid])
        # A sum over the vocabulary, added in another order by another CPU's kernels: 1.8e-5 apart
        # on an AVX2-only EPYC (a wrong chunk would be nats apart).
        torch.testing.assert_close(dist.entropy()[valid], reference.entropy()[valid], atol=1e-4, rtol=1e-5)
        assert (log_prob[~valid] == 0).all()


def test_training_distribution_refuses_other_tokens_and_an_entropy_it_did_not_compute(tiny_model_dir):
    model = load_causal_lm(str(tiny_model_dir)).eval()
    batch = _batch(model.config.vocab_size)
    dist = make_training_actor(model).get_dist(batch)
    with pytest.raises(ValueError, match="tokens it was given"):
        dist.log_prob(batch[keys.ACTION].flip(-1))
    with pytest.raises(ValueError, match="no entropies"):
        dist.entropy()
