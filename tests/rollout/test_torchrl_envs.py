"""The collector serves single-turn TorchRL LLM envs that orz-rl did not write: TorchRL's own
CountdownEnv (procedural problems, its own chat prompt and reward parser) fills a replay buffer
through SingleTurnCollector, and the batch adapter keeps what that env wrote."""

from __future__ import annotations

import torch
from torchrl.envs.llm.datasets.countdown import CountdownEnv

from orz_rl import keys
from orz_rl.models.loading import load_tokenizer
from orz_rl.problems.prompts import as_strings
from orz_rl.rollout.buffers import make_replay_buffer
from orz_rl.rollout.collector import make_collector
from orz_rl.rollout.policies import Sampling, make_vllm_policy
from orz_rl.rollout.training_batch import ToTrainingBatch


def torchrl_countdown(tokenizer, envs: int = 4) -> CountdownEnv:
    return CountdownEnv(tokenizer=tokenizer, input_mode="text", num_envs=envs, batch_size_dl=envs, seed=0)


def test_single_turn_collector_fills_a_replay_buffer_from_torchrls_countdown_env(vllm_engine, tiny_model_dir):
    tok = load_tokenizer(str(tiny_model_dir))
    env = torchrl_countdown(tok)
    policy = make_vllm_policy(vllm_engine, tok, Sampling(max_new_tokens=16))
    buffer = make_replay_buffer(32, batch_size=8, ragged=True)
    collector = make_collector(env, policy, tok.pad_token_id, total_steps=2, replay_buffer=buffer)
    for nothing in collector:
        assert nothing is None  # each rollout went into the buffer
    assert len(buffer) == 2 * 4
    sample = buffer.sample()
    assert sample.shape == (8,)
    prompts = as_strings(sample.get(keys.PROMPT_TEXT))
    assert all("create an arithmetic expression that equals" in p for p in prompts)  # TorchRL's prompt
    assert all(a.startswith("target=") for a in as_strings(sample.get(keys.ANSWER)))  # its ground truth
    # The keys this env does not write get the documented stand-ins.
    assert (sample.get(keys.PROMPT_ID) == -1).all()
    reasons = as_strings(sample.get(keys.FINISH_REASON))
    assert sample.get(keys.STOPPED).tolist() == [r == "stop" for r in reasons]
    # A ragged buffer: rollouts padded to different widths come back as a list, not a stack.
    lengths = torch.stack([m.sum(-1) for m in sample.get(keys.RESPONSE_MASK, as_list=True)])
    assert torch.equal(lengths, sample.get(keys.RESPONSE_LENGTH)) and (lengths > 0).all()


def test_the_batch_adapter_keeps_what_the_torchrl_env_and_policy_wrote(vllm_engine, tiny_model_dir):
    tok = load_tokenizer(str(tiny_model_dir))
    policy = make_vllm_policy(vllm_engine, tok, Sampling(max_new_tokens=16))
    collector = make_collector(torchrl_countdown(tok), policy, tok.pad_token_id, total_steps=1, postproc=None)
    (raw,) = list(collector)  # TorchRL's own output, as the env and the policy wrote it
    batch = ToTrainingBatch(tok.pad_token_id)(raw)
    n = raw.shape[0]
    assert torch.equal(batch.get(keys.EPISODE_REWARD), raw.get(("next", "reward")).reshape(n).float())
    responses = raw.get(("tokens", "response"), as_list=True)
    prompts = raw.get(("tokens", "prompt"), as_list=True)
    mask, prompt_mask = batch.get(keys.RESPONSE_MASK), batch.get(keys.PROMPT_MASK)
    for i in range(n):
        assert torch.equal(batch.get(keys.ACTION)[i][mask[i]], responses[i])
        assert torch.equal(batch.get(keys.PROMPT_TOKENS)[i][prompt_mask[i]], prompts[i])
    assert as_strings(batch.get(keys.RESPONSE_TEXT)) == as_strings(raw.get(("text", "response")))
