"""A step-time model of synchronous against bounded-staleness rollouts at ORZ's lengths: a model,
not a measurement (no GPU has run either yet). ``docs/scaling.md`` prints its table.

    python bench/staleness_model.py [--engines 16] [--training-gpus 16] [--mean-lengths 500 2000 4000]

One step is ORZ's: 128 prompts x 64 responses, cut at 8,000 tokens, on the layout of ``orz-7b`` (16
vLLM engines of one GPU, 16 training GPUs). Three parts, each a stated assumption:

* **generation**: each engine decodes its share of the responses together (continuous batching;
  the KV cache of ``orz-7b``'s plan holds ~500 of them at a mean of 2,000 tokens; beyond that vLLM
  would queue, which the model leaves out), one token of every unfinished response per decode
  step; a decode step takes ``decode_ms`` (the weights read once) plus, per unfinished response,
  ``per_sequence_ms`` and the reading of its cached tokens. So the step's generation ends with its
  longest response, decoded at a small batch;
* **training**: FLOPs over the step's tokens: the actor's forward and backward (6 N per token) and
  its recomputation under activation checkpointing (2 N), the same for the critic, and the
  critic's value pass (2 N), at ``mfu`` of the GPUs' bf16 peak;
* **response lengths**: log-normal with the given mean and ``length_sigma``, cut at the limit.
  ORZ's curves grow the mean from a few hundred tokens to a few thousand over a run; the three
  means stand for early, middle and late steps.

Synchronous (``rollout.max_staleness 0``): generation, then training, then the weight sync.
``max_staleness 1``: the next rollout generates while the step trains, so a step takes the longer
of the two, plus the sync (on separate GPUs, as the layouts put them; an engine that shares the
trainer's GPU gains nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
import tyro

from orz_rl.config import AT_LEAST_0, AT_LEAST_1, POSITIVE, UNIT, bound_problems, raise_if_any


@dataclass(frozen=True)
class Args:
    """The model's assumptions (defaults: ``orz-7b`` on H100-class GPUs)."""

    mean_lengths: Annotated[tuple[float, ...], POSITIVE] = (500.0, 2000.0, 4000.0)
    """Mean response length of the step before the cut, one row each."""
    length_sigma: Annotated[float, POSITIVE] = 0.8
    """Sigma of the log-normal response lengths (its log's standard deviation)."""
    max_new_tokens: Annotated[int, AT_LEAST_1] = 8000
    """The response limit."""
    prompt_tokens: Annotated[int, AT_LEAST_0] = 200
    """Tokens of a prompt (ORZ's template and a question)."""
    responses: Annotated[int, AT_LEAST_1] = 8192
    """Responses per step (128 prompts x 64)."""
    engines: Annotated[int, AT_LEAST_1] = 16
    """vLLM engines; each decodes an equal share."""
    decode_ms: Annotated[float, POSITIVE] = 8.0
    """Milliseconds of a decode step at a batch of one (7B in bf16: its weights read once)."""
    per_sequence_ms: Annotated[float, AT_LEAST_0] = 0.04
    """Milliseconds each unfinished response adds to a decode step, its cached tokens apart."""
    kv_ms_per_k_tokens: Annotated[float, AT_LEAST_0] = 0.017
    """Milliseconds a decode step spends reading 1,000 cached tokens of one response (7B: 57,344
    bytes a token, at 3.35 TB/s)."""
    parameters_b: Annotated[float, POSITIVE] = 7.6
    """Billions of parameters of the actor (the critic has as many)."""
    training_gpus: Annotated[int, AT_LEAST_1] = 16
    """GPUs that train actor and critic."""
    peak_tflops: Annotated[float, POSITIVE] = 989.0
    """Dense bf16 TFLOP/s of one training GPU (H100 SXM)."""
    mfu: Annotated[float, UNIT] = 0.35
    """Share of the peak the training passes reach."""
    sync_s: Annotated[float, AT_LEAST_0] = 2.0
    """Seconds of the weight sync from trainer to engines."""
    seed: int = 0
    """Seed of the response lengths drawn."""


def response_lengths(mean: float, sigma: float, n: int, limit: int, seed: int) -> torch.Tensor:
    """``n`` log-normal lengths of mean ``mean`` (before the cut), cut at ``limit``, at least 1."""
    g = torch.Generator().manual_seed(seed)
    mu = torch.tensor(mean).log() - sigma**2 / 2
    drawn = (mu + sigma * torch.randn(n, generator=g, dtype=torch.float64)).exp()
    return drawn.round().clamp(1, limit).long()


def generation_seconds(lengths: torch.Tensor, args: Args) -> tuple[float, float]:
    """The slowest engine's seconds, and of them those after 90 % of its responses ended: decode
    steps until its longest response ends, decode step ``i`` taking ``decode_ms`` plus, per
    unfinished response, ``per_sequence_ms`` and its ``prompt_tokens + i`` cached tokens' reading
    (the shares dealt round-robin)."""
    slowest = (0.0, 0.0)
    for e in range(args.engines):
        share = lengths[e :: args.engines]
        if share.numel() == 0:
            continue
        # Unfinished responses at decode step i: those longer than i.
        unfinished = share.numel() - torch.bincount(share, minlength=int(share.max()) + 1).cumsum(0)[:-1]
        context = (args.prompt_tokens + torch.arange(unfinished.numel())) / 1000
        ms = args.decode_ms + unfinished * (args.per_sequence_ms + args.kv_ms_per_k_tokens * context)
        tail = unfinished <= 0.1 * share.numel()
        if ms.sum() / 1000 > slowest[0]:
            slowest = (float(ms.sum()) / 1000, float(ms[tail].sum()) / 1000)
    return slowest


def training_seconds(tokens: float, args: Args) -> float:
    """Actor and critic passes over ``tokens`` at the GPUs' ``mfu``: 6 N forward and backward, 2 N
    recomputed (activation checkpointing), each; 2 N for the critic's values."""
    flops = (8 + 8 + 2) * args.parameters_b * 1e9 * tokens
    return flops / (args.training_gpus * args.peak_tflops * 1e12 * args.mfu)


def step_model(args: Args, mean: float) -> dict[str, float]:
    """One row: the lengths drawn, generation, training, and a step synchronous and one behind."""
    lengths = response_lengths(mean, args.length_sigma, args.responses, args.max_new_tokens, args.seed)
    gen, tail = generation_seconds(lengths, args)
    train = training_seconds(float(lengths.sum()) + args.prompt_tokens * args.responses, args)
    sync, stale = gen + train + args.sync_s, max(gen, train) + args.sync_s
    return {
        "mean": float(lengths.float().mean()),
        "cut": float((lengths >= args.max_new_tokens).float().mean()),
        "gen": gen,
        "tail": tail,
        "train": train,
        "sync": sync,
        "stale": stale,
        "speed-up": sync / stale,
        "idle": gen / sync,
    }


def main(args: Args) -> None:
    raise_if_any(bound_problems(args))
    heads = ("mean len", "cut", "gen s", "tail s", "train s", "k=0 s", "k=1 s", "k0/k1", "idle")
    print(" ".join(f"{h:>8}" for h in heads))
    for mean in args.mean_lengths:
        r = step_model(args, mean)
        print(
            f"{r['mean']:8.0f} {r['cut']:8.1%} {r['gen']:8.1f} {r['tail']:8.1f} {r['train']:8.1f} "
            f"{r['sync']:8.1f} {r['stale']:8.1f} {r['speed-up']:7.2f}x {r['idle']:8.1%}"
        )
    print("tail: generation seconds after 90 % of an engine's responses ended (the slowest engine's)")
    print("idle: the share of a synchronous step in which the training GPUs wait for generation")


if __name__ == "__main__":
    main(tyro.cli(Args))
