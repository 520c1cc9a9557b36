"""Sample packing: sequences laid end to end in rows of a token budget, instead of padded to the longest.

ORZ (``docs/orz_recipe.md``) packs the training forward passes: each prompt +
response sequence goes whole into a row of at most ``budget`` tokens, and a row is
padded only at its end, to the fullest row (:func:`balanced_rows` fills the rows
evenly, so that this padding stays small). Position
ids restart at 0 for every sequence; given position ids that restart and no
attention mask, transformers builds a causal mask that keeps attention within
each sequence (``masking_utils.find_packed_sequence_indices``), for its eager, SDPA
and flash-attention kernels alike. The result is laid back out as the padded
``[N, R, H]`` batch the losses read, so nothing downstream changes.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import torch
from tensordict import TensorDict

from orz_rl import keys


def _place(order: list[int], lengths: list[int], count: int, budget: int) -> list[list[int]] | None:
    """Longest first, each sequence into the emptiest of ``count`` rows; ``None`` if one fits nowhere."""
    heap = [(0, r) for r in range(count)]
    rows: list[list[int]] = [[] for _ in range(count)]
    for i in order:
        fill, r = heapq.heappop(heap)
        if fill + lengths[i] > budget:
            return None
        rows[r].append(i)
        heapq.heappush(heap, (fill + lengths[i], r))
    return rows


def balanced_rows(lengths: list[int], budget: int, tries: int = 8) -> list[list[int]]:
    """Rows of sequence indices, each row's lengths summing to at most ``budget`` (a longer
    sequence gets a row of its own), chosen for the fewest tokens once padded.

    Rows are padded to the fullest one, so what costs is rows x fullest fill, not the number of
    rows: first fit would leave a last row nearly empty yet padded to full width, and 64 equal
    sequences in 7 rows leave one row a sequence fuller than the rest. From the fewest rows that
    could hold all tokens (and ``tries`` more, and one sequence per row), each sequence, longest
    first, goes to the emptiest row; the placement with the fewest padded tokens wins.
    """
    alone = [[i] for i, n in enumerate(lengths) if n > budget]
    order = sorted((i for i, n in enumerate(lengths) if n <= budget), key=lambda i: -lengths[i])
    if not order:
        return alone
    fewest = -(-sum(lengths[i] for i in order) // budget)
    # One sequence per row (padded to the longest) is the fallback; on a tie the shorter rows
    # win, as they cost less attention.
    best, best_cost = [[i] for i in order], (len(order) * lengths[order[0]], lengths[order[0]])
    for count in range(fewest, min(fewest + tries, len(order)) + 1):
        rows = _place(order, lengths, count, budget)
        if rows is not None:
            width = max(sum(lengths[i] for i in row) for row in rows)
            if (count * width, width) < best_cost:
                best, best_cost = rows, (count * width, width)
    return alone + best


@dataclass
class PackedBatch:
    """Sequences packed into rows, and where each response token's predicting position went."""

    input_ids: torch.Tensor
    """``[rows, width]`` token ids (``pad_id`` after each row's last sequence)."""
    position_ids: torch.Tensor
    """``[rows, width]``: 0, 1, ... within each sequence (and within the padding at the end)."""
    source: torch.Tensor
    """Flat ``rows * width`` index of the position that predicts each valid response token,
    in the row-major order of ``response_mask`` (what ``hidden[response_mask]`` would list)."""

    @property
    def tokens(self) -> int:
        return self.input_ids.numel()


def pack(
    prompt_tokens: torch.Tensor,
    prompt_mask: torch.Tensor,
    action: torch.Tensor,
    response_mask: torch.Tensor,
    budget: int,
    pad_id: int = 0,
) -> PackedBatch:
    """Pack the left-padded prompts and right-padded responses of a batch into rows of ``budget``."""
    prompt_len, response_len = prompt_mask.sum(-1), response_mask.sum(-1)
    if prompt_len.numel() and int(prompt_len.min()) < 1:
        raise ValueError("packing needs a prompt token before each response (its first prediction)")
    lengths = prompt_len + response_len
    sizes = lengths.tolist()
    rows = balanced_rows(sizes, budget)
    # Where each sequence starts in the flat [rows * width] layout; only this placement is Python.
    fill, row_of, start_in_row = [0] * len(rows), [0] * len(lengths), [0] * len(lengths)
    for r, row in enumerate(rows):
        for i in row:
            row_of[i], start_in_row[i] = r, fill[r]
            fill[r] += sizes[i]
    width = max(fill)
    device = prompt_tokens.device
    start = torch.tensor(row_of, device=device) * width + torch.tensor(start_in_row, device=device)

    def flat_positions(counts: torch.Tensor, first: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # For each sequence's run of `counts` items: the item's index k within its run, and
        # `first` + k in the flat layout.
        seq = torch.repeat_interleave(torch.arange(len(counts), device=device), counts)
        k = torch.arange(seq.numel(), device=device) - (counts.cumsum(0) - counts)[seq]
        return k, first[seq] + k

    # Valid tokens in sequence order: each left-padded prompt's, then its response's.
    tokens = torch.cat([prompt_tokens, action], -1)[torch.cat([prompt_mask, response_mask], -1)]
    k, where = flat_positions(lengths, start)
    input_ids = torch.full((len(rows) * width,), pad_id, dtype=prompt_tokens.dtype, device=device)
    input_ids[where] = tokens
    # Positions restart with every sequence, and with the padding that ends a row.
    tail = torch.arange(width, device=device)[None] - torch.tensor(fill, device=device)[:, None]
    position_ids = tail.reshape(-1).clone()
    position_ids[where] = k
    # Response token j of sequence i is predicted at its prompt's last position + j.
    _, source = flat_positions(response_len, start + prompt_len - 1)
    return PackedBatch(input_ids.view(len(rows), width), position_ids.view(len(rows), width), source)


def pad_shares(prompt_mask: torch.Tensor, response_mask: torch.Tensor, micro_batch_size: int, budget: int):
    """``(padded, packed)``: the share of pad tokens in the forward passes of a batch split into
    micro-batches of ``micro_batch_size`` sequences, padded to the longest and packed."""
    valid = padded = packed = 0
    for start in range(0, prompt_mask.shape[0], micro_batch_size):
        p, r = prompt_mask[start : start + micro_batch_size], response_mask[start : start + micro_batch_size]
        lengths = (p.sum(-1) + r.sum(-1)).tolist()
        valid += sum(lengths)
        padded += p.numel() + r.numel()
        rows = balanced_rows(lengths, budget)
        packed += len(rows) * max(sum(lengths[i] for i in row) for row in rows)
    return 1 - valid / max(padded, 1), 1 - valid / max(packed, 1)


def pad_share_metrics(batch: TensorDict, micro_batch_size: int, pack_tokens: int) -> dict[str, float]:
    """``data/pad_share_padded`` and ``data/pad_share_packed`` of a training batch whose passes pack
    into rows of ``pack_tokens`` (0: padded to the longest, which both figures then describe)."""
    prompt_mask, mask = batch.get(keys.PROMPT_MASK), batch.get(keys.RESPONSE_MASK)
    budget = pack_tokens or mask.shape[-1] + prompt_mask.shape[-1]
    padded, packed = pad_shares(prompt_mask, mask, micro_batch_size, budget)
    return {"data/pad_share_padded": padded, "data/pad_share_packed": packed}
