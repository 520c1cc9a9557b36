"""The update mechanics: AdamW with ORZ's warm-up, mini-batches, micro-batches, clipping, the step.

One call of :func:`optimise` is one phase of ORZ's update (the actor's one step, or the
critic's twelve), read top to bottom:

1. cut the rollout into ``steps`` disjoint mini-batches (sampled without replacement);
2. for each: run it in micro-batches of ``micro_batch_size`` sequences, each loss already
   divided by the whole mini-batch's sequence and token counts, and accumulate the gradients;
3. clip the gradient norm (ORZ: 1.0), take one optimiser step and one scheduler step.

Under ``torchrun`` each rank runs its slice of every mini-batch and FSDP sums the gradients
(:mod:`orz_rl.runtime.distributed`), so one step sees the same gradient as one process would.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
from tensordict import TensorDict
from torch import nn
from torchrl.data import ReplayBuffer
from torchrl.objectives import LossModule

from orz_rl import keys
from orz_rl.config import OptimConfig, PPOConfig
from orz_rl.runtime.distributed import Distributed
from orz_rl.runtime.timing import Timer


def make_optimizer(
    model: nn.Module, lr: float, cfg: OptimConfig, warmup_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over ``model`` and its schedule: ORZ's linear warm-up over ``warmup_steps``
    optimiser steps, then constant."""
    optim = torch.optim.AdamW(model.parameters(), lr=lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    warmup = max(warmup_steps, 1)
    return optim, torch.optim.lr_scheduler.LambdaLR(optim, lambda step: min(1.0, (step + 1) / warmup))


def micro_batches(
    rows: TensorDict, n: int, micro_batch_size: int, dist: Distributed
) -> Iterator[tuple[TensorDict, float]]:
    """This rank's micro-batches of ``rows`` (a batch or mini-batch of ``n`` sequences), as
    ``(micro-batch, weight)`` on the training device.

    Every rank runs as many passes (each forward of a sharded model is a collective): past its
    share of the rows a pass runs on a spare row with weight 0.
    """
    part = rows[dist.share(n)]
    for k in range(dist.pieces(n, micro_batch_size)):
        micro = part[k * micro_batch_size : (k + 1) * micro_batch_size]
        micro, weight = (micro, 1.0) if micro.shape[0] else (rows[:1], 0.0)
        yield (micro if dist.device.type == "cpu" else micro.to(dist.device)), weight


def sequence_tokens(rows: TensorDict) -> int:
    """The prompt and response tokens of ``rows`` (what a pass over them computes, padding aside)."""
    return int(rows.get(keys.PROMPT_MASK).sum()) + int(rows.get(keys.RESPONSE_MASK).sum())


@torch.no_grad()
def forward_all(
    fn: Callable[[TensorDict], torch.Tensor],
    batch: TensorDict,
    micro_batch_size: int,
    dist: Distributed,
    clock: Timer,
) -> torch.Tensor:
    """``fn`` over every row of ``batch``, without gradients, in micro-batches: each rank computes
    its slice, every rank gets all the rows. ``clock`` times the passes and counts their tokens."""
    n, parts = batch.shape[0], []
    for micro, weight in micro_batches(batch, n, micro_batch_size, dist):
        with clock("forward"):
            out = fn(micro).cpu()
        parts += [out] if weight else []
        clock.count("forward", sequence_tokens(micro) if weight else 0)
    return dist.gather_rows(torch.cat(parts), n)


def optimise(
    loss_module: LossModule,
    buffer: ReplayBuffer,
    optim: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    *,
    steps: int,
    ppo: PPOConfig,
    dist: Distributed,
    clock: Timer,
) -> dict[str, float]:
    """``steps`` optimiser steps over disjoint mini-batches of ``buffer`` (one rollout), in
    micro-batches of ``ppo.micro_batch_size``, clipped to ``ppo.max_grad_norm``.

    The loss is the sum of the module's ``loss_*`` outputs (TorchRL's convention). Returns its
    outputs averaged over the steps (summed over ranks) and the mean gradient norm before
    clipping. ``clock`` times the forward and backward passes and counts their tokens.
    """
    mini = math.ceil(len(buffer) / steps)
    totals: dict[str, float] = {}
    grad_norm = 0.0
    for _ in range(steps):
        sample = buffer.sample(batch_size=mini)
        n_seq = sample.shape[0]
        n_tok = int(keys.assistant_mask(sample).sum())
        optim.zero_grad(set_to_none=True)
        for micro, weight in micro_batches(sample, n_seq, ppo.micro_batch_size, dist):
            with clock("forward_backward"):  # with the loss on the model's outputs
                out = loss_module(micro, num_sequences=n_seq, num_tokens=n_tok)
                loss = sum(v for k, v in out.items() if k.startswith("loss_"))
                (loss * weight).backward()
            clock.count("forward_backward", sequence_tokens(micro) if weight else 0)
            # The loss is already normalised by the mini-batch counts (its parts sum to the
            # whole); diagnostics are micro-batch means, so weight them.
            share = weight * micro.shape[0] / n_seq
            for k, v in out.items():
                part = v.item() * weight if k.startswith("loss_") else v.item() * share
                totals[k] = totals.get(k, 0.0) + part / steps
        # The optimiser's own parameters: under FSDP2 the module may hold unsharded stand-ins
        # (the root's, between a backward and the next forward) that carry no gradient.
        params = [p for group in optim.param_groups for p in group["params"]]
        norm = torch.nn.utils.clip_grad_norm_(params, ppo.max_grad_norm)
        grad_norm += norm.full_tensor().item() if hasattr(norm, "full_tensor") else norm.item()
        optim.step()
        sched.step()
    return dist.sum(totals) | {"grad_norm": grad_norm / steps}
