"""The KL term against the reference: zero where the policy is the reference, and as a loss and as a
reward penalty equal to the hand-written KL with its autograd gradient."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict

from orz_rl import keys
from orz_rl.advantages.kl import kl_estimate
from orz_rl.advantages.registry import estimate_advantages
from orz_rl.advantages.token_gae import make_gae
from orz_rl.ppo.losses import TokenClipPPOLoss
from tests.ppo.test_losses import N, _actor, _batch, _LeafLogits


def _logp(logits: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits, -1).gather(-1, action[..., None]).squeeze(-1)


def _hand_k3(logp: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    ratio = torch.exp(ref - logp)
    return ratio - 1 - torch.log(ratio)


@pytest.mark.parametrize("estimator", ["k1", "k3"])
def test_both_estimators_are_zero_where_the_policy_is_the_reference(estimator):
    logp = -torch.rand(3, 5) * 4
    assert torch.equal(kl_estimate(logp, logp.clone(), estimator), torch.zeros(3, 5))
    with pytest.raises(ValueError, match="unknown KL estimator 'k2'"):
        kl_estimate(logp, logp, "k2")


def test_the_kl_loss_is_the_coefficient_times_the_hand_written_k3_with_its_gradient():
    module = _LeafLogits()
    batch = _batch(seed=4)
    mask = batch[keys.RESPONSE_MASK]
    g = torch.Generator().manual_seed(5)
    ref_logits = module.logits.detach() + 0.5 * torch.randn(module.logits.shape, generator=g)
    batch[keys.REF_LOG_PROB] = _logp(ref_logits, batch[keys.ACTION])
    coef = 0.1
    out = TokenClipPPOLoss(_actor(module), kl_coef=coef, kl_estimator="k3")(batch)
    logits = module.logits.detach().clone().requires_grad_(True)
    k3 = _hand_k3(_logp(logits, batch[keys.ACTION]), batch[keys.REF_LOG_PROB])
    expected = coef * torch.stack([k3[i][mask[i]].mean() for i in range(N)]).mean()
    torch.testing.assert_close(out["loss_kl"], expected)
    torch.testing.assert_close(out["kl_ref"], k3[mask].mean().detach())
    out["loss_kl"].backward()
    expected.backward()
    torch.testing.assert_close(module.logits.grad, logits.grad)
    assert logits.grad[mask].abs().sum() > 0


def test_the_kl_loss_and_its_gradient_vanish_where_the_policy_is_the_reference():
    module = _LeafLogits()
    batch = _batch(seed=6)
    # The reference computed as the actor computes its own log-probs: the same numbers, bit for bit.
    ref = torch.distributions.Categorical(logits=module.logits.detach()).log_prob(batch[keys.ACTION])
    batch[keys.REF_LOG_PROB] = ref
    out = TokenClipPPOLoss(_actor(module), kl_coef=0.5)(batch)
    assert out["loss_kl"].item() == 0.0
    out["loss_kl"].backward()
    assert module.logits.grad.abs().max() == 0
    # Without a coefficient the KL is reported, not trained on.
    assert "loss_kl" not in TokenClipPPOLoss(_actor(module))(batch).keys()


_RESPONSE = torch.tensor([[True, True, True], [True, True, False]])
#: Token 1 of row 0 a tool's output, with log-probs far apart: no penalty may fall there.
_WITH_TOOL = torch.tensor([[True, False, True], [True, True, False]])


@pytest.mark.parametrize("sampled", [None, _WITH_TOOL], ids=["one-turn", "tool-output-inside"])
def test_a_kl_reward_penalty_enters_every_sampled_tokens_return(sampled):
    old = torch.tensor([[-1.0, -9.0, -0.5], [-0.3, -0.2, 0.0]])
    ref = torch.tensor([[-1.5, -0.1, -0.5], [-0.3, -0.9, 0.0]])
    batch = TensorDict(
        {
            keys.RESPONSE_MASK: _RESPONSE,
            keys.EPISODE_REWARD: torch.tensor([1.0, 0.0]),
            keys.ACTION_LOG_PROB: old,
            keys.REF_LOG_PROB: ref,
            keys.STATE_VALUE: torch.zeros(2, 3, 1),
        },
        batch_size=[2],
    )
    if sampled is not None:
        batch.set(keys.ASSISTANT_MASK, sampled)
    mask = _RESPONSE if sampled is None else sampled
    estimate_advantages(batch, "gae", make_gae(), group_size=1, normalize=False, kl_penalty=(0.1, "k1"))
    # gamma = lambda = 1, values 0: each token's return is the reward minus the penalties from it on.
    kl = (old - ref) * mask
    expected = torch.tensor([1.0, 0.0])[:, None] - 0.1 * kl.flip(-1).cumsum(-1).flip(-1)
    torch.testing.assert_close(batch[keys.ADVANTAGE].squeeze(-1), torch.where(mask, expected, 0.0))
    with pytest.raises(ValueError, match="grpo scores whole responses"):
        estimate_advantages(batch, "grpo", make_gae(), group_size=2, kl_penalty=(0.1, "k1"))
