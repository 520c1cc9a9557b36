"""Stock TorchRL GAE and ClipPPOLoss on an orz-rl batch: no ``set_keys``, padding left out."""

from __future__ import annotations

import torch
from tensordict import TensorDict
from torchrl.objectives import ClipPPOLoss
from torchrl.objectives.value import GAE

from orz_rl import keys
from orz_rl.advantages.token_gae import (
    gae_advantages,
    make_gae,
    set_next_values,
    set_token_rewards,
    token_steps,
)
from orz_rl.models.loading import load_causal_lm
from orz_rl.ppo.actor import make_training_actor
from orz_rl.ppo.losses import TokenClipPPOLoss


def _padded_batch(vocab: int, n: int = 6, prompt: int = 12, response: int = 16) -> TensorDict:
    """Responses of very different lengths (1 to 16 of 16), so the means over padding, over tokens
    and over sequences all differ."""
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([16, 1, 9, 3, 12, 5])
    mask = torch.arange(response)[None] < lengths[:, None]
    return TensorDict(
        {
            keys.PROMPT_TOKENS: torch.randint(2, vocab, (n, prompt), generator=g),
            keys.PROMPT_MASK: torch.ones(n, prompt, dtype=torch.bool),
            keys.ACTION: torch.randint(2, vocab, (n, response), generator=g),
            keys.RESPONSE_MASK: mask,
            keys.EPISODE_REWARD: torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 1.0]),
            keys.STATE_VALUE: torch.randn(n, response, 1, generator=g),
        },
        [n],
    )


def test_stock_gae_and_clip_ppo_loss_run_on_an_orz_batch_and_take_the_token_mean_over_valid_tokens(
    tiny_model_dir,
):
    model = load_causal_lm(str(tiny_model_dir)).eval()
    actor = make_training_actor(model, with_entropy=True)
    batch = set_next_values(set_token_rewards(_padded_batch(model.config.vocab_size)))

    # Stock GAE on the token steps gives orz-rl's advantages (before normalisation).
    steps = token_steps(batch)
    GAE(gamma=1.0, lmbda=1.0, value_network=None)(steps)
    ours = gae_advantages(batch.clone(), make_gae(), normalize=False)
    mask = batch[keys.RESPONSE_MASK]
    torch.testing.assert_close(steps["advantage"][mask], ours[keys.ADVANTAGE][mask])
    batch.set(keys.ADVANTAGE, steps["advantage"].masked_fill(~mask[..., None], 0.0))

    # Old log-probs a little off the actor's, so that ratios differ from 1 and some clip.
    with torch.no_grad():
        current = actor.get_dist(batch).log_prob(batch[keys.ACTION])
    g = torch.Generator().manual_seed(1)
    batch.set(keys.ACTION_LOG_PROB, current + 0.3 * torch.randn(current.shape, generator=g))

    stock = ClipPPOLoss(actor, critic_network=None, normalize_advantage=False)
    assert stock.tensor_keys.sample_log_prob == keys.ACTION_LOG_PROB  # its default: no set_keys
    token_mean = TokenClipPPOLoss(actor, aggregation="token-mean")(batch)["loss_objective"]
    torch.testing.assert_close(stock(batch)["loss_objective"], token_mean)

    # Clip-higher, (low, high), as TorchRL's loss takes it: the same tokens clip, and some ratios
    # lie between the symmetric and the higher upper bound, so the two losses differ.
    higher = ClipPPOLoss(actor, critic_network=None, normalize_advantage=False, clip_epsilon=(0.2, 0.28))
    ours_higher = TokenClipPPOLoss(actor, aggregation="token-mean", clip_epsilon=(0.2, 0.28))(batch)
    torch.testing.assert_close(higher(batch)["loss_objective"], ours_higher["loss_objective"])
    ratio = (current - batch[keys.ACTION_LOG_PROB]).exp()[mask]
    assert ((ratio > 1.2) & (ratio < 1.28)).any()
    assert abs(ours_higher["loss_objective"] - token_mean) > 1e-4

    # What the mask changes: without it the stock loss averages over padding as well.
    unmasked = stock(batch.exclude(keys.LOSS_MASK))["loss_objective"]
    share = mask.sum() / mask.numel()
    torch.testing.assert_close(unmasked, token_mean * share)
    assert abs(unmasked - token_mean) > 0.1 * abs(token_mean)
    # And ORZ's aggregation (each sequence's mean, then the mean over sequences) is another figure,
    # which only TokenClipPPOLoss computes.
    orz = TokenClipPPOLoss(actor)(batch)["loss_objective"]
    assert abs(orz - token_mean) > 0.1 * abs(token_mean)
