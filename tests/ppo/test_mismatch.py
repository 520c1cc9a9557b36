"""The engine's distance from the trainer, its truncated importance-sampling correction, and the
entropy bonus: each against a hand-written computation."""

from __future__ import annotations

import math

import torch

from orz_rl import keys
from orz_rl.ppo.losses import TokenClipPPOLoss
from orz_rl.ppo.mismatch import LogProbMismatch
from tests.ppo.test_losses import N, _actor, _batch, _LeafLogits


def _logp(module: _LeafLogits, action: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(module.logits.detach(), -1).gather(-1, action[..., None]).squeeze(-1)


def test_mismatch_metrics_are_the_mean_and_max_distance_and_the_k3_kl_over_valid_tokens():
    trainer = torch.tensor([[-1.0, -2.0, -3.0], [-0.5, -0.5, -9.0]])
    engine = torch.tensor([[-1.5, -2.0, 7.0], [-0.4, -0.5, 0.0]])
    mask = torch.tensor([[True, True, False], [True, True, False]])
    m = LogProbMismatch()
    m.add(trainer[:1], engine[:1], mask[:1])  # two micro-batches
    m.add(trainer[1:], engine[1:], mask[1:])
    d = [0.5, 0.0, -0.1, 0.0]
    out = m.take()
    assert math.isclose(out["rollout/logprob_abs_diff_mean"], sum(map(abs, d)) / 4, rel_tol=1e-6)
    assert math.isclose(out["rollout/logprob_abs_diff_max"], 0.5, rel_tol=1e-6)
    k3 = sum(math.exp(x) - 1 - x for x in d) / 4
    assert math.isclose(out["rollout/logprob_k3_kl"], k3, rel_tol=1e-5)
    assert m.take() == {}, "take() starts the count afresh"


def test_the_policy_loss_counts_the_engines_distance_from_its_old_log_probs():
    module = _LeafLogits()
    batch = _batch()
    mask = batch[keys.RESPONSE_MASK]
    engine = _logp(module, batch[keys.ACTION]) + 0.25 * mask  # the engine 0.25 nats more sure
    batch[keys.GENERATION_LOG_PROB] = engine
    # With old log-probs from the loss's own pass (ORZ's one policy step), the distance is the
    # current policy's; with a separate pass, the stored old log-probs'.
    own = TokenClipPPOLoss(_actor(module), on_policy_without_old_log_probs=True)
    own(batch.exclude(keys.ACTION_LOG_PROB))
    assert math.isclose(own.mismatch.take()["rollout/logprob_abs_diff_mean"], 0.25, rel_tol=1e-5)
    stored = TokenClipPPOLoss(_actor(module))
    stored(batch)
    d = (batch[keys.ACTION_LOG_PROB] - engine)[mask]
    assert math.isclose(
        stored.mismatch.take()["rollout/logprob_abs_diff_mean"], d.abs().mean().item(), rel_tol=1e-5
    )


def test_truncated_importance_sampling_weights_each_tokens_surrogate_by_the_capped_ratio():
    module = _LeafLogits()
    batch = _batch(seed=1)
    mask = batch[keys.RESPONSE_MASK]
    g = torch.Generator().manual_seed(3)
    engine = batch[keys.ACTION_LOG_PROB] + torch.randn(N, batch[keys.ACTION].shape[1], generator=g)
    batch[keys.GENERATION_LOG_PROB] = engine
    cap = 2.0
    out = TokenClipPPOLoss(_actor(module), tis_cap=cap)(batch)
    logp = _logp(module, batch[keys.ACTION])
    ratio = (logp - batch[keys.ACTION_LOG_PROB]).exp()
    weight = (batch[keys.ACTION_LOG_PROB] - engine).exp().clamp(max=cap)
    assert (weight[mask] >= cap).any() and (weight[mask] < 1).any(), "the draw exercises both sides"
    adv = batch[keys.ADVANTAGE].squeeze(-1)
    per_token = -weight * torch.minimum(ratio * adv, ratio.clamp(0.8, 1.2) * adv)
    expected = torch.stack([per_token[i][mask[i]].mean() for i in range(N)]).mean()
    torch.testing.assert_close(out["loss_objective"], expected)
    raw = (batch[keys.ACTION_LOG_PROB] - engine).exp()
    torch.testing.assert_close(out["tis_clip_fraction"], ((raw > cap) & mask).sum() / mask.sum())
    plain = TokenClipPPOLoss(_actor(module))(batch)
    assert not torch.allclose(plain["loss_objective"], expected), "off by default"
    assert "tis_clip_fraction" not in plain.keys()


def test_the_entropy_bonus_is_the_coefficient_times_the_mean_entropy_and_its_gradient():
    module = _LeafLogits()
    batch = _batch(seed=2)
    mask = batch[keys.RESPONSE_MASK]
    coef = 0.01
    out = TokenClipPPOLoss(_actor(module), entropy_coef=coef)(batch)
    logits = module.logits.detach().clone().requires_grad_(True)
    p = logits.softmax(-1)
    entropy = -(p * p.log()).sum(-1)
    expected = torch.stack([-coef * entropy[i][mask[i]].mean() for i in range(N)]).mean()
    torch.testing.assert_close(out["loss_entropy"], expected)
    out["loss_entropy"].backward()
    expected.backward()
    torch.testing.assert_close(module.logits.grad, logits.grad)
    assert "loss_entropy" not in TokenClipPPOLoss(_actor(module))(batch).keys(), "ORZ: no bonus"
