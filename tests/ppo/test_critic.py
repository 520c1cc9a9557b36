"""The critic: ORZ's value-head init and no weight shared with the actor."""

from __future__ import annotations

import math

import torch

from orz_rl.models.loading import load_causal_lm
from orz_rl.ppo.critic import Critic


def test_value_head_is_bias_free_linear_drawn_as_orz_draws_it(tiny_model_dir):
    """ORZ's critic from the policy's base model: ``normal_(0, 1 / (hidden + 1))`` (its
    ``get_llm_for_sequence_regression(..., init_value_head=True)``), so the first values are ~0."""
    critic = Critic.from_pretrained(tiny_model_dir)
    head = critic.value_head
    hidden = critic.backbone.config.hidden_size
    assert isinstance(head, torch.nn.Linear) and head.bias is None
    assert head.weight.shape == (1, hidden)
    w = head.weight.detach().flatten()
    # With 128 draws the sample std is within ~6 % of the true one (one standard error); the
    # default nn.Linear init (U(+-1/sqrt(hidden)), std 0.051) and U(+-sqrt 5) are 6x and 160x off.
    assert abs(w.std().item() * (hidden + 1) - 1) < 0.25
    assert abs(w.mean().item()) < 4 / (hidden + 1) / math.sqrt(hidden)
    ids, mask = torch.tensor([[5, 6, 7, 8]]), torch.ones(1, 2, dtype=torch.bool)
    values = critic(ids[:, :2], mask, ids[:, 2:], mask)
    assert values.abs().max() < 0.5


def test_actor_and_critic_share_no_parameter_storage(tiny_model_dir):
    actor = load_causal_lm(str(tiny_model_dir))
    critic = Critic.from_pretrained(tiny_model_dir)
    actor_ptrs = {p.untyped_storage().data_ptr() for p in actor.parameters()}
    critic_ptrs = {p.untyped_storage().data_ptr() for p in critic.parameters()}
    assert not actor_ptrs & critic_ptrs
    # Same starting weights (both from the base model), separate copies:
    a = dict(actor.get_decoder().named_parameters())
    for name, p in critic.backbone.named_parameters():
        torch.testing.assert_close(p, a[name])
    before = {n: p.detach().clone() for n, p in actor.named_parameters()}
    opt = torch.optim.SGD(critic.parameters(), lr=1.0)
    ids = torch.tensor([[5, 6, 7]])
    mask = torch.ones_like(ids, dtype=torch.bool)
    critic(ids, mask, ids, mask).sum().backward()
    opt.step()
    for n, p in actor.named_parameters():
        assert torch.equal(p, before[n]), f"actor parameter {n} moved with a critic step"


def test_critic_round_trips_through_hugging_face_format(tiny_model_dir, tmp_path):
    critic = Critic.from_pretrained(tiny_model_dir)
    critic.save_pretrained(tmp_path / "critic")
    assert (tmp_path / "critic" / "config.json").is_file()
    loaded = Critic.from_pretrained(tmp_path / "critic")
    torch.testing.assert_close(loaded.value_head.weight, critic.value_head.weight)
    ids = torch.tensor([[5, 6, 7, 8]])
    mask = torch.ones_like(ids, dtype=torch.bool)
    torch.testing.assert_close(loaded(ids, mask, ids, mask), critic(ids, mask, ids, mask))
