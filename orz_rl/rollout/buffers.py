"""Replay buffers of training batches (TorchRL's ``ReplayBuffer``)."""

from __future__ import annotations

import torch
from tensordict import TensorDictBase
from torchrl.data import LazyStackStorage, LazyTensorStorage, ReplayBuffer, TensorStorage
from torchrl.data.replay_buffers.samplers import SamplerWithoutReplacement


def make_replay_buffer(size: int, batch_size: int, *, ragged: bool = False) -> ReplayBuffer:
    """A buffer of training batches, sampled in mini-batches without replacement.

    The default stores dense rows of one width, which is what the trainer keeps
    (one rollout at a time). ``ragged=True`` stores rows as a lazy stack, so that
    rollouts of different response widths accumulate in one buffer.
    """
    storage = LazyStackStorage(size) if ragged else LazyTensorStorage(size)
    return ReplayBuffer(
        storage=storage,
        sampler=SamplerWithoutReplacement(drop_last=False),
        batch_size=batch_size,
    )


def rollout_buffer(batch: TensorDictBase, generator: torch.Generator | None = None) -> ReplayBuffer:
    """The replay buffer of one rollout: ``batch`` itself as the storage (no copy), sampled
    in mini-batches without replacement (pass ``batch_size`` to ``sample``), drawn from
    ``generator`` (torch's global one if ``None``).

    The trainer trains on one rollout at a time, whose response width changes from step
    to step: a lazily allocated storage per step would copy the batch and announce itself
    in the log at every step.
    """
    return ReplayBuffer(
        storage=TensorStorage(batch), sampler=SamplerWithoutReplacement(drop_last=False), generator=generator
    )


def step_generator(seed: int | None = None) -> torch.Generator:
    """A generator for one rollout's mini-batches, seeded from torch's global one (one draw), or
    from ``seed`` where rollouts sampled in another thread draw from the global one meanwhile."""
    return torch.Generator().manual_seed(int(torch.randint(2**62, ())) if seed is None else seed)
