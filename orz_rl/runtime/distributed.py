"""Training over several processes: ``torchrun`` ranks, torch.distributed and FSDP2.

Under ``torchrun --nproc-per-node N`` the trainer runs once per rank; without
it, :meth:`Distributed.from_env` gives a world of one and every method here is
the identity, so the trainer has one code path. Gloo on a CPU, NCCL on GPUs.

How a step is split (``orz_rl.trainer``):

* rank 0 collects the rollout (the engines live in Ray actors, see
  :mod:`orz_rl.rollout.ray_engines`) and broadcasts it with the RNG state that draws the
  mini-batches, so every rank holds the same batch and draws the same mini-batches;
* every forward and backward pass is split: rank ``r`` computes the ``r``-th
  contiguous slice of the batch (old log-probs, values) or of each mini-batch
  (losses). Actor and critic are FSDP2-sharded (:func:`fully_shard` on each
  decoder layer, then on the whole), so a rank holds 1/N of their weights,
  gradients and AdamW state;
* advantages are computed over the whole batch on every rank (GAE costs
  milliseconds), so their normalisation is batch-level: mean and std over every
  valid token of the rollout, as in ORZ;
* losses are normalised by the whole mini-batch's sequence and token counts, and
  FSDP's gradient reduction sums the ranks' parts (its default would average
  them), so the policy takes exactly one step per rollout on the same gradient
  as one process would.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class Distributed:
    """This process's place among the training ranks."""

    rank: int = 0
    """This process's rank (0 collects rollouts, logs and writes checkpoints)."""
    world_size: int = 1
    """Training ranks (``torchrun``'s ``--nproc-per-node`` x nodes)."""
    device: torch.device = torch.device("cpu")
    """Where this rank's model shards and forward passes live."""

    @classmethod
    def from_env(cls) -> Distributed:
        """Join the process group ``torchrun`` describes in the environment (a world of one without it)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        on_gpu = torch.cuda.is_available()
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device("cuda", local) if on_gpu else torch.device("cpu")
        if on_gpu:
            torch.cuda.set_device(device)
        if world == 1:
            return cls(device=device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if on_gpu else "gloo", device_id=device if on_gpu else None)
        return cls(rank=dist.get_rank(), world_size=dist.get_world_size(), device=device)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    # --- models -------------------------------------------------------------------

    def shard(self, module: nn.Module, layers: Iterable[nn.Module]) -> nn.Module:
        """FSDP2 over the ranks: each of ``layers``, then ``module`` (the rest: embeddings, norms,
        heads). ``module`` is what the trainer calls, so FSDP gathers its parameters around that
        call. Every rank first takes rank 0's weights (the critic's value head is random)."""
        module.to(self.device)
        if not self.active:
            return module
        from torch.distributed.fsdp import fully_shard

        with torch.no_grad():
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, src=0)
        groups = [*layers, module]
        for group in groups:
            fully_shard(group)
        for group in groups:
            # The losses are already divided by the whole mini-batch's counts: sum the ranks' parts,
            # with a plain SUM (Gloo has no pre-multiplied sum).
            group.set_gradient_divide_factor(1.0)
            group.set_force_sum_reduction_for_comms(True)
        return module

    def full_state_dict(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """``module``'s whole state dict on the CPU of rank 0 (empty on the others): one
        all-gather per tensor, so no rank ever holds more than one whole tensor on its device."""
        from torch.distributed.tensor import DTensor

        out = {}
        for name, tensor in module.state_dict().items():
            full = tensor.full_tensor() if isinstance(tensor, DTensor) else tensor
            if self.is_main:
                out[name] = full.detach().cpu()
        return out

    # --- data ----------------------------------------------------------------------

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank (pickled)."""
        if not self.active:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def share(self, n: int) -> slice:
        """This rank's contiguous slice of ``n`` items (sizes differ by at most one)."""
        base, extra = divmod(n, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))

    def pieces(self, n: int, size: int) -> int:
        """How many micro-batches of at most ``size`` every rank runs over its share of ``n``
        items: the same count on every rank, because each forward of a sharded model is a
        collective (a rank with fewer items runs a zero-weight pass)."""
        largest = -(-n // self.world_size)
        return max(1, -(-largest // size))

    def gather_rows(self, part: torch.Tensor, n: int) -> torch.Tensor:
        """The ``n`` rows of which this rank computed ``part`` (its :meth:`share`), on every rank."""
        if not self.active:
            return part
        full = part.new_zeros((n, *part.shape[1:]))
        full[self.share(n)] = part
        # Zeros elsewhere: the sum is each rank's rows, exactly.
        dist.all_reduce(full)
        return full

    def sum(self, values: dict[str, float]) -> dict[str, float]:
        """Each value summed over the ranks."""
        if not self.active or not values:
            return values
        names = sorted(values)
        t = torch.tensor([values[k] for k in names], dtype=torch.float64)
        dist.all_reduce(t)
        return dict(zip(names, t.tolist(), strict=True))

    def max(self, values: dict[str, float]) -> dict[str, float]:
        """Each value's maximum over the ranks."""
        if not self.active or not values:
            return values
        names = sorted(values)
        t = torch.tensor([values[k] for k in names], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return dict(zip(names, t.tolist(), strict=True))

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on one (stop requests, time limits)."""
        if not self.active:
            return flag
        t = torch.tensor([int(flag)])
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def close(self) -> None:
        if self.active and dist.is_initialized():
            dist.destroy_process_group()
