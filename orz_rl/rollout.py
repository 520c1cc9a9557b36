"""Rollouts: TorchRL's LLMCollector over a text env, densified for training.

:func:`make_collector` returns a plain :class:`~torchrl.collectors.llm.LLMCollector`
(one env step = one response per env element) whose ``postproc`` turns the
ragged, lazily stacked output into the dense batch documented in
:mod:`orz_rl.keys`, ready for a :class:`~torchrl.data.ReplayBuffer`.
"""

from __future__ import annotations

import torch
from tensordict import NonTensorStack, TensorDict, TensorDictBase
from torch.nn.utils.rnn import pad_sequence
from torchrl.collectors.llm import LLMCollector
from torchrl.data import LazyTensorStorage, ReplayBuffer
from torchrl.data.replay_buffers.samplers import SamplerWithoutReplacement
from torchrl.envs import EnvBase

from orz_rl import keys
from orz_rl.text_env import as_strings


class ToTrainingBatch:
    """Collector ``postproc``: ragged LLM output -> the dense batch of :mod:`orz_rl.keys`.

    Trains on the token ids the policy sampled, never on re-tokenised text.
    """

    def __init__(self, pad_token_id: int) -> None:
        self.pad = pad_token_id

    def __call__(self, td: TensorDictBase) -> TensorDict:
        td = td.reshape(-1)
        prompts = td.get(("tokens", "prompt"), as_list=True)
        responses = td.get(("tokens", "response"), as_list=True)
        gen_lp = td.get(("log_probs", "response"), as_list=True)
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
        for i, (r, lp) in enumerate(zip(responses, gen_lp, strict=True)):
            action[i, : r.numel()] = r
            log_prob[i, : lp.numel()] = lp
        response_mask = torch.arange(r_width).expand(n, r_width) < resp_len[:, None]
        return TensorDict(
            {
                keys.PROMPT_TOKENS: prompt_tokens,
                keys.PROMPT_MASK: prompt_mask,
                keys.ACTION: action,
                keys.RESPONSE_MASK: response_mask,
                keys.GENERATION_LOG_PROB: log_prob,
                keys.EPISODE_REWARD: td.get(("next", "reward")).reshape(n).float(),
                keys.STOPPED: td.get(("next", keys.STOPPED)).reshape(n),
                keys.PROMPT_ID: td.get(keys.PROMPT_ID).reshape(n),
                keys.RESPONSE_LENGTH: resp_len,
                keys.PROMPT_TEXT: NonTensorStack(*as_strings(td.get(("text", "prompt")))),
                keys.RESPONSE_TEXT: NonTensorStack(*as_strings(td.get(("text", "response")))),
                keys.ANSWER: NonTensorStack(*as_strings(td.get(keys.ANSWER))),
            },
            batch_size=[n],
        )


def make_collector(env: EnvBase, policy, pad_token_id: int, total_steps: int = -1) -> LLMCollector:
    """An LLMCollector yielding one dense batch (every env element once) per iteration."""
    steps = -1 if total_steps < 0 else total_steps * env.batch_size.numel()
    return LLMCollector(
        env,
        policy=policy,
        dialog_turns_per_batch=env.batch_size.numel(),
        total_dialog_turns=steps,
        postproc=ToTrainingBatch(pad_token_id),
    )


def make_replay_buffer(size: int, batch_size: int) -> ReplayBuffer:
    """A buffer holding one rollout, sampled in mini-batches without replacement."""
    return ReplayBuffer(
        storage=LazyTensorStorage(size),
        sampler=SamplerWithoutReplacement(drop_last=False),
        batch_size=batch_size,
    )
