"""orz-rl's collector ``postproc``: a rollout's ragged LLM output -> the dense training batch.

The batch and its keys are :mod:`orz_rl.keys`. The env's optional keys (the contract of
:mod:`orz_rl.rollout.collector`) have stand-ins when it does not write them, so any single-turn
TorchRL LLM env trains.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from tensordict import NonTensorStack, TensorDict, TensorDictBase
from torch.nn.utils.rnn import pad_sequence

from orz_rl import keys
from orz_rl.problems.prompts import as_strings


def leaves(items: list) -> list:
    """The leaves of a nested list (one entry per env element, whatever the collector's shape)."""
    return [leaf for item in items for leaf in (leaves(item) if isinstance(item, list) else [item])]


def stop_verdicts(td: TensorDictBase, n: int) -> tuple[torch.Tensor, NonTensorStack]:
    """``(stopped, finish_reason)`` of the ``n`` responses of a stepped rollout: the env's
    ``("next", "stopped")`` and the policy's ``finish_reason`` where they are there; one from the
    other where only one is; every response stopped where neither is."""
    reasons = _strings(td, keys.FINISH_REASON) if keys.FINISH_REASON in td.keys() else None
    stopped = td.get(("next", keys.STOPPED), None)
    if stopped is not None:
        stopped = stopped.reshape(n)
    elif reasons is not None:
        stopped = torch.tensor([r == "stop" for r in reasons.tolist()])
    else:
        stopped = torch.ones(n, dtype=torch.bool)
    if reasons is None:  # the transformers backend reports none: the env's stop rule decided
        reasons = NonTensorStack(*["stop" if s else "length" for s in stopped.tolist()])
    return stopped, reasons


def _strings(td: TensorDictBase, key) -> NonTensorStack:
    """The strings at ``key``, one per row: the stack itself when it is one already (building a
    stack of 256 strings costs more than the rest of the postproc)."""
    value = td.get(key)
    if isinstance(value, NonTensorStack) and value.batch_dims == 1:
        return value
    return NonTensorStack(*leaves(as_strings(value)))


class ToTrainingBatch:
    """Collector ``postproc``: ragged LLM output -> the dense batch of :mod:`orz_rl.keys`.

    Trains on the token ids the policy sampled, never on re-tokenised text. Where the env
    writes no ``stopped``, the policy's ``finish_reason`` decides (``"stop"``), else every
    response counts as stopped; no ``prompt_id`` is -1; no ``answer`` is left out.
    """

    def __init__(self, pad_token_id: int) -> None:
        self.pad = pad_token_id

    def __call__(self, td: TensorDictBase) -> TensorDict:
        # Read key by key: reshaping the whole (lazily stacked) output costs more than the rest.
        prompts = leaves(td.get(("tokens", "prompt"), as_list=True))
        responses = leaves(td.get(("tokens", "response"), as_list=True))
        gen_lp = leaves(td.get(("log_probs", "response"), as_list=True))
        n = len(prompts)
        prompt_len = torch.tensor([p.numel() for p in prompts])
        resp_len = torch.tensor([r.numel() for r in responses])
        prompt_tokens = pad_sequence(prompts, batch_first=True, padding_value=self.pad, padding_side="left")
        p_width = prompt_tokens.shape[-1]
        prompt_mask = torch.arange(p_width).expand(n, p_width) >= (p_width - prompt_len)[:, None]
        # An empty response still occupies one (masked) column so shapes stay valid.
        r_width = max(int(resp_len.max()), 1)
        action = torch.full((n, r_width), self.pad, dtype=torch.int64)
        log_prob = torch.zeros(n, r_width)
        response_mask = torch.arange(r_width).expand(n, r_width) < resp_len[:, None]
        if responses:
            action[response_mask] = torch.cat(responses)
            log_prob[response_mask] = torch.cat(gen_lp).float()
        sampled = None
        if keys.ASSISTANT_MASK in td.keys():  # a multi-turn rollout: the env's insertions are not
            sampled = torch.zeros_like(response_mask)
            sampled[response_mask] = torch.cat(leaves(td.get(keys.ASSISTANT_MASK, as_list=True)))
        stopped, reasons = stop_verdicts(td, n)
        # The collector's tag, at the top level as TorchRL's PolicyVersion documents it: the
        # version that sampled the response. Untracked, every response counts as version 0's.
        version = td.get(keys.POLICY_VERSION, torch.zeros(n, dtype=torch.int64)).reshape(n)
        prompt_id = td.get(keys.PROMPT_ID, torch.full((n,), -1, dtype=torch.int64)).reshape(n)
        batch = TensorDict(
            {
                keys.PROMPT_TOKENS: prompt_tokens,
                keys.PROMPT_MASK: prompt_mask,
                keys.ACTION: action,
                keys.RESPONSE_MASK: response_mask,
                keys.GENERATION_LOG_PROB: log_prob,
                keys.EPISODE_REWARD: td.get(("next", "reward")).reshape(n).float(),
                keys.STOPPED: stopped,
                keys.FINISH_REASON: reasons,
                keys.POLICY_VERSION: version,
                keys.PROMPT_ID: prompt_id,
                keys.RESPONSE_LENGTH: resp_len,
                keys.PROMPT_TEXT: _strings(td, ("text", "prompt")),
                keys.RESPONSE_TEXT: _strings(td, ("text", "response")),
            },
            batch_size=[n],
        )
        if keys.ANSWER in td.keys():
            batch.set(keys.ANSWER, _strings(td, keys.ANSWER))
        if sampled is not None:
            batch.set(keys.ASSISTANT_MASK, sampled)
        return batch


#: The batch's left-padded entries (prompts); its other ``[N, width]`` entries are right-padded.
_LEFT_PADDED = (keys.PROMPT_TOKENS, keys.PROMPT_MASK)


def cat_batches(batches: list[TensorDict], pad_token_id: int) -> TensorDict:
    """Training batches (as :class:`ToTrainingBatch` makes them) one after the other, each padded to
    the widest prompt and response: token ids with ``pad_token_id``, masks with False, log-probs
    with 0, prompts on the left and responses on the right."""
    if len(batches) == 1:
        return batches[0]
    out = {}
    for key in batches[0].keys():
        values = [b.get(key) for b in batches]
        if isinstance(values[0], NonTensorStack):
            out[key] = NonTensorStack(*[s for v in values for s in v.tolist()])
            continue
        if values[0].dim() > 1:
            width = max(v.shape[1] for v in values)
            fill = pad_token_id if key in (keys.ACTION, keys.PROMPT_TOKENS) else 0  # masks: 0 is False
            side = (1, 0) if key in _LEFT_PADDED else (0, 1)
            values = [F.pad(v, tuple(n * (width - v.shape[1]) for n in side), value=fill) for v in values]
        out[key] = torch.cat(values)
    return TensorDict(out, batch_size=[sum(b.shape[0] for b in batches)])
