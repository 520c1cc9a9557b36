"""Evaluation's rollouts: one pass of the training collector, read back per response."""

from __future__ import annotations

import pytest
import torch

from orz_rl.envs.math import MathEnv
from orz_rl.models.loading import load_causal_lm, load_tokenizer
from orz_rl.problems.problem import Problem
from orz_rl.problems.toy_task import addition_problems
from orz_rl.rollout.generation import start_sampling
from orz_rl.rollout.policies import Sampling, make_vllm_policy
from orz_rl.rollout.responses import sample_responses


@pytest.mark.parametrize("backend", ["vllm", "transformers"])
def test_every_env_element_comes_back_once_with_its_prompt_reward_length_and_finish(
    tiny_model_dir, backend, request
):
    torch.manual_seed(0)
    tok = load_tokenizer(str(tiny_model_dir))
    sampling = Sampling(max_new_tokens=24)
    if backend == "vllm":  # the session's engine: starting a second one costs ~20 s
        policy = make_vllm_policy(request.getfixturevalue("vllm_engine"), tok, sampling)
    else:  # as orz-rl eval and a training run start it
        model = load_causal_lm(str(tiny_model_dir)).eval()
        policy = start_sampling("transformers", str(tiny_model_dir), tok, model, sampling).policy
    problems = [Problem(q, a) for q, a in addition_problems()[:3]]
    env = MathEnv(problems, prompts_per_step=3, samples_per_prompt=2, eos=tok.eos_token)
    responses = sample_responses(env, policy)
    assert sorted(r.prompt_id for r in responses) == [0, 0, 1, 1, 2, 2]
    for r in responses:
        assert problems[r.prompt_id].question in r.prompt
        assert 0 < r.tokens <= 24 and r.finish_reason in ("stop", "length")
        assert r.finish_reason == "stop" or r.tokens == 24  # cut only by the limit
        assert r.reward in (0.0, 1.0) and (r.reward == 0.0 or r.finish_reason == "stop")
