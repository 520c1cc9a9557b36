"""GAE on token sequences: TorchRL's paths, the trainer's, and the floor, measured in one run.

    python bench/gae.py [--responses 512] [--tokens 4096] [--repeats 5]

ORZ's setting: gamma = lambda = 1, the reward on each response's last token, 0 on
the others and on padding, responses of random lengths padded to ``--tokens``.
Rows, each the median of ``--repeats`` timed runs after one warm-up:

* TorchRL's ``GAE`` module, default ``vectorized=True`` (trajectories split at each done,
  padded, and convolved with the discount series);
* TorchRL's ``GAE`` module, ``vectorized=False`` (a loop over the time steps);
* a plain reverse loop over tokens, vectorised over the batch;
* the trainer's: :class:`orz_rl.advantages.token_gae.TokenGAE` (TorchRL's module with the exact
  closed form for gamma = lambda = 1), called as the trainer calls it;
* the floor: a reverse cumulative sum of the masked rewards minus the values, which
  is exact here and does no more than the closed form must.

Each row prints seconds, its ratio to the floor, and its largest difference from
TorchRL's loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import tyro
from tensordict import TensorDict
from torchrl.objectives.value import GAE

from orz_rl import keys
from orz_rl.advantages.token_gae import make_gae, set_next_values, set_token_rewards, token_steps

from timing import timed


@dataclass(frozen=True)
class Args:
    """What to measure."""

    responses: int = 512
    """Responses in the batch (B)."""
    tokens: int = 4096
    """Padded response width (T)."""
    repeats: int = 5
    """Timed runs per row (the median is printed)."""
    threads: int = 0
    """torch threads (0: torch's default)."""
    seed: int = 0
    """Seed of the lengths, rewards and values."""


def _batch(args: Args) -> TensorDict:
    g = torch.Generator().manual_seed(args.seed)
    lengths = torch.randint(1, args.tokens + 1, (args.responses,), generator=g)
    batch = TensorDict(
        {
            keys.RESPONSE_MASK: torch.arange(args.tokens)[None] < lengths[:, None],
            keys.EPISODE_REWARD: torch.randint(0, 2, (args.responses,), generator=g).float(),
            keys.STATE_VALUE: torch.randn(args.responses, args.tokens, 1, generator=g),
        },
        batch_size=[args.responses],
    )
    return set_next_values(set_token_rewards(batch))


def _reverse_loop(batch: TensorDict) -> torch.Tensor:
    reward = batch.get(keys.REWARD).squeeze(-1)
    value = batch.get(keys.STATE_VALUE).squeeze(-1)
    nxt = batch.get(keys.NEXT_STATE_VALUE).squeeze(-1)
    not_done = (~batch.get(keys.DONE).squeeze(-1)).float()
    delta = reward + nxt - value
    adv = torch.empty_like(delta)
    running = torch.zeros(delta.shape[0])
    for t in reversed(range(delta.shape[1])):
        running = delta[:, t] + not_done[:, t] * running
        adv[:, t] = running
    return adv


def _floor(batch: TensorDict) -> torch.Tensor:
    masked = torch.where(batch.get(keys.RESPONSE_MASK), batch.get(keys.REWARD).squeeze(-1), 0.0)
    return masked.flip(-1).cumsum(-1).flip(-1) - batch.get(keys.STATE_VALUE).squeeze(-1)


def main(args: Args) -> None:
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    batch = _batch(args)
    mask = batch.get(keys.RESPONSE_MASK)

    def module(gae: GAE):
        return lambda: gae(token_steps(batch))["advantage"].squeeze(-1)

    rows = [
        ("TorchRL GAE, vectorized=True (default)", module(GAE(gamma=1.0, lmbda=1.0, value_network=None))),
        (
            "TorchRL GAE, vectorized=False",
            module(GAE(gamma=1.0, lmbda=1.0, value_network=None, vectorized=False)),
        ),
        ("reverse loop over tokens (batch-vectorised)", lambda: _reverse_loop(batch)),
        ("trainer: TokenGAE (closed form, gamma = lambda = 1)", module(make_gae(1.0, 1.0))),
    ]
    floor_s, floor = timed(lambda: _floor(batch), args.repeats)
    # The slow rows run once.
    results = [(name, *timed(fn, args.repeats if "True" not in name else 1)) for name, fn in rows]
    reference = dict((name, out) for name, _, out in results)["TorchRL GAE, vectorized=False"]
    threads = torch.get_num_threads()
    print(f"GAE, B = {args.responses} responses x T = {args.tokens} tokens, {threads} threads")
    print(f"{'computation':55s} {'seconds':>9s} {'x floor':>9s} {'max |diff|':>11s}")
    results.append(("floor: reverse cumsum of masked rewards - values", floor_s, floor))
    for name, seconds, out in results:
        diff = (out - reference)[mask].abs().max().item()
        print(f"{name:55s} {seconds:9.4f} {seconds / floor_s:9.1f} {diff:11.2e}")


if __name__ == "__main__":
    main(tyro.cli(Args))
