"""Rollouts through TorchRL's LLMCollector with a real transformer and MathEnv."""

from __future__ import annotations

import torch

from orz_rl import keys
from orz_rl.actor import make_generation_policy
from orz_rl.data import Problem
from orz_rl.envs.math import MathEnv
from orz_rl.modeling import load_causal_lm, load_tokenizer
from orz_rl.rollout import make_collector, make_replay_buffer
from orz_rl.toy_task import addition_problems


def _collect(model_dir, max_new_tokens: int, prompts: int = 3, samples: int = 4):
    torch.manual_seed(0)
    tok = load_tokenizer(str(model_dir))
    model = load_causal_lm(str(model_dir)).eval()
    problems = [Problem(q, a) for q, a in addition_problems()]
    env = MathEnv(problems, prompts_per_step=prompts, samples_per_prompt=samples, eos=tok.eos_token)
    policy = make_generation_policy(model, tok, max_new_tokens=max_new_tokens)
    collector = make_collector(env, policy, tok.pad_token_id, total_steps=1)
    (batch,) = list(collector)
    collector.shutdown()
    return batch, tok


def test_samples_of_a_prompt_arrive_grouped_and_complete_in_the_buffer(tiny_model_dir):
    batch, tok = _collect(tiny_model_dir, max_new_tokens=32)
    assert batch.shape == (12,)
    ids = batch[keys.PROMPT_ID].view(3, 4)
    assert (ids == ids[:, :1]).all()
    buffer = make_replay_buffer(12, 12)
    buffer.extend(batch.exclude(keys.PROMPT_TEXT, keys.RESPONSE_TEXT, keys.ANSWER))
    stored = buffer[:]
    assert len(buffer) == 12
    assert torch.equal(stored[keys.ACTION], batch[keys.ACTION])
    assert torch.equal(stored[keys.PROMPT_ID], batch[keys.PROMPT_ID])


def test_batch_keeps_the_sampled_token_ids_and_masks(tiny_model_dir):
    batch, tok = _collect(tiny_model_dir, max_new_tokens=32)
    mask = batch[keys.RESPONSE_MASK]
    assert torch.equal(mask.sum(-1), batch[keys.RESPONSE_LENGTH])
    for i in range(batch.shape[0]):
        ids = batch[keys.ACTION][i][mask[i]].tolist()
        assert tok.decode(ids) == batch[keys.RESPONSE_TEXT][i]
        prompt = batch[keys.PROMPT_TOKENS][i][batch[keys.PROMPT_MASK][i]].tolist()
        assert tok.decode(prompt) == batch[keys.PROMPT_TEXT][i]
    # pad columns hold the pad id, so they never pose as sampled tokens
    assert (batch[keys.ACTION][~mask] == tok.pad_token_id).all()


def test_a_stop_string_ends_the_response_and_is_kept(tiny_model_dir):
    batch, _ = _collect(tiny_model_dir, max_new_tokens=32)
    stopped = batch[keys.STOPPED]
    assert stopped.any()
    for text, s in zip(batch[keys.RESPONSE_TEXT], stopped.tolist(), strict=True):
        if s:
            assert text.endswith("</answer>")
            assert text.count("</answer>") == 1


def test_a_response_cut_by_the_token_limit_is_marked_and_earns_zero(tiny_model_dir):
    batch, _ = _collect(tiny_model_dir, max_new_tokens=4)
    assert (batch[keys.RESPONSE_LENGTH] == 4).all()
    assert not batch[keys.STOPPED].any()
    assert (batch[keys.EPISODE_REWARD] == 0).all()
