"""The training forward pass: a transformer over (prompt, response) pairs.

Actor and critic both read a batch laid out as in :mod:`orz_rl.keys`: prompts
left-padded to ``P``, responses right-padded to ``R``. Concatenated, every
row's response starts at column ``P``, so the states that predict response
token ``t`` sit at column ``P - 1 + t`` for every row: one slice, no gather.
"""

from __future__ import annotations

import torch
from torch import nn

from orz_rl.ppo.packing import pack


def response_hidden_states(
    backbone: nn.Module,
    prompt_tokens: torch.Tensor,
    prompt_mask: torch.Tensor,
    action: torch.Tensor,
    response_mask: torch.Tensor,
    pack_tokens: int = 0,
) -> torch.Tensor:
    """Hidden states ``[N, R, H]`` of the positions that predict each response token.

    ``pack_tokens > 0``: the sequences run packed into rows of that many tokens
    (:mod:`orz_rl.ppo.packing`); the valid positions hold the same states (to rounding) and
    the padded ones hold 0. ``0``: padded to the longest prompt and response.
    """
    if pack_tokens > 0:
        packed = pack(prompt_tokens, prompt_mask, action, response_mask, pack_tokens)
        out = backbone(input_ids=packed.input_ids, position_ids=packed.position_ids, use_cache=False)
        hidden = out.last_hidden_state
        states = hidden.new_zeros((*action.shape, hidden.shape[-1]))
        states[response_mask] = hidden.reshape(-1, hidden.shape[-1])[packed.source]
        return states
    input_ids = torch.cat([prompt_tokens, action], dim=-1)
    mask = torch.cat([prompt_mask, response_mask], dim=-1).long()
    # Left padding shifts the real tokens; positions must count real tokens only.
    position_ids = (mask.cumsum(-1) - 1).clamp_min(0)
    out = backbone(input_ids=input_ids, attention_mask=mask, position_ids=position_ids, use_cache=False)
    p, r = prompt_tokens.shape[-1], action.shape[-1]
    return out.last_hidden_state[:, p - 1 : p - 1 + r]


def enable_activation_checkpointing(model: nn.Module) -> None:
    """Keep only each decoder layer's input in the forward; recompute the rest in the backward.

    Non-reentrant: the variant that composes with FSDP2's parameter gathers in the backward.
    transformers checkpoints in training mode only, which changes nothing else for Qwen2
    (its one dropout, on attention, is 0 in every released config).
    """
    model.gradient_checkpointing_enable({"use_reentrant": False})
    model.train()
