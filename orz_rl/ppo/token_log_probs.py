"""Log-probabilities (and entropies) of chosen tokens from hidden states, a chunk of tokens at a time.

The LM head's ``[tokens, vocabulary]`` logits are the largest tensor of a policy pass: 151,936
floats per token for Qwen2.5, and the backward holds several such tensors at once
(``orz_rl.tools.plan.LOGIT_PEAK_BYTES`` per logit). Computed over ``chunk_tokens`` tokens at a
time, each chunk checkpointed, no more than one chunk's logits are ever alive: the forward keeps
only each chunk's hidden states (which the decoder made anyway) and its outputs, and the backward
recomputes one chunk's logits at a time, at the cost of running the head once more. verl's
``logprobs_from_logits`` and Liger's fused linear cross-entropy do the same for the same reason.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


def _chunk(
    head: nn.Module, hidden: torch.Tensor, tokens: torch.Tensor, with_entropy: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    logits = head(hidden).float()
    lse = logits.logsumexp(-1)
    log_prob = logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1) - lse
    if not with_entropy:
        return log_prob, log_prob.new_zeros(())
    # H = logsumexp - sum_v p_v * logit_v
    entropy = lse - (F.softmax(logits, -1) * logits).sum(-1)
    return log_prob, entropy


def token_log_probs(
    head: nn.Module,
    hidden: torch.Tensor,
    tokens: torch.Tensor,
    chunk_tokens: int = 0,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``log pi(tokens | hidden)`` ``[T]`` for ``hidden`` ``[T, H]``, and the entropies ``[T]`` of
    the head's distributions where ``with_entropy`` (else ``None``).

    ``chunk_tokens > 0`` and fewer than ``T``: chunks of that many tokens, each recomputed in the
    backward where gradients are recorded. Otherwise all ``T`` at once (the same numbers, with the
    whole ``[T, vocabulary]`` logits kept for the backward).
    """
    total = hidden.shape[0]
    if chunk_tokens <= 0 or total <= chunk_tokens:
        log_prob, entropy = _chunk(head, hidden, tokens, with_entropy)
        return log_prob, entropy if with_entropy else None
    recompute = torch.is_grad_enabled()
    parts = []
    for start in range(0, total, chunk_tokens):
        end = start + chunk_tokens
        args = (head, hidden[start:end], tokens[start:end], with_entropy)
        parts.append(checkpoint(_chunk, *args, use_reentrant=False) if recompute else _chunk(*args))
    log_prob = torch.cat([p[0] for p in parts])
    return log_prob, torch.cat([p[1] for p in parts]) if with_entropy else None
