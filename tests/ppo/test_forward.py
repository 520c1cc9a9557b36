"""Activation checkpointing changes what the backward keeps, not the gradients it computes."""

from __future__ import annotations

import torch
from tensordict import TensorDict

from orz_rl import keys
from orz_rl.models.loading import load_causal_lm
from orz_rl.ppo.actor import make_training_actor
from orz_rl.ppo.critic import Critic, make_value_operator
from orz_rl.ppo.forward import enable_activation_checkpointing


def _batch(vocab: int, n: int = 4, prompt: int = 12, response: int = 20) -> TensorDict:
    g = torch.Generator().manual_seed(0)
    mask = torch.ones(n, response, dtype=torch.bool)
    mask[1, 15:] = False
    return TensorDict(
        {
            keys.PROMPT_TOKENS: torch.randint(2, vocab, (n, prompt), generator=g),
            keys.PROMPT_MASK: torch.ones(n, prompt, dtype=torch.bool),
            keys.ACTION: torch.randint(2, vocab, (n, response), generator=g),
            keys.RESPONSE_MASK: mask,
        },
        [n],
    )


def _grads_and_saved_bytes(module, loss_of, batch) -> tuple[dict[str, torch.Tensor], int]:
    saved = []

    def pack(t):
        saved.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = loss_of(batch)
    loss.backward()
    return {n: p.grad.clone() for n, p in module.named_parameters()}, sum(saved)


def _actor_and_critic(path, checkpointed: bool) -> list[tuple[dict[str, torch.Tensor], int]]:
    model = load_causal_lm(str(path)).eval()
    torch.manual_seed(1)  # the same value-head draw for both critics
    critic = Critic.from_pretrained(str(path)).eval()
    if checkpointed:
        enable_activation_checkpointing(model)
        enable_activation_checkpointing(critic.backbone)
    actor, value = make_training_actor(model), make_value_operator(critic)
    batch = _batch(model.config.vocab_size)

    def policy_loss(b):
        return actor.get_dist(b).log_prob(b[keys.ACTION])[b[keys.RESPONSE_MASK]].sum()

    def value_loss(b):
        return value(b.clone(False))[keys.STATE_VALUE].sum()

    return [
        _grads_and_saved_bytes(model, policy_loss, batch),
        _grads_and_saved_bytes(critic, value_loss, batch),
    ]


def test_checkpointed_actor_and_critic_give_the_same_gradients_keeping_less(tiny_model_dir):
    plain = _actor_and_critic(tiny_model_dir, checkpointed=False)
    checkpointed = _actor_and_critic(tiny_model_dir, checkpointed=True)
    for (grads, kept), (grads_ckpt, kept_ckpt) in zip(plain, checkpointed, strict=True):
        assert grads.keys() == grads_ckpt.keys()
        for name in grads:
            torch.testing.assert_close(grads_ckpt[name], grads[name], rtol=1e-5, atol=1e-6)
        assert kept_ckpt < 0.6 * kept  # most of each layer's activations are recomputed instead
