"""A new advantage estimator is one file plus one registry entry, and every consumer reads its needs."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace

import pytest
import torch
from tensordict import TensorDict

from orz_rl import keys
from orz_rl.advantages import registry
from orz_rl.advantages.registry import ESTIMATORS, estimate_advantages, get_estimator, register
from orz_rl.advantages.token_gae import make_gae
from orz_rl.recipes import RECIPES
from orz_rl.runtime.preflight import settings_problems
from orz_rl.tools.plan import plan

#: The whole of a new estimator: each reward minus the best of its group.
NEW_ESTIMATOR_FILE = """
from dataclasses import dataclass

from orz_rl.advantages.estimator import AdvantageEstimator, clipped_rewards, set_response_scores
from orz_rl.advantages.groups import groups


@dataclass(frozen=True)
class BestOfGroup(AdvantageEstimator):
    def advantages(self, batch, inputs):
        g = groups(clipped_rewards(batch, inputs), inputs.group_size)
        set_response_scores(batch, (g - g.max(-1, keepdim=True).values).reshape(-1))


BEST_OF_GROUP = BestOfGroup("best_of_group", "each reward minus its group's best", min_group_size=2)
"""


@pytest.fixture
def new_estimator(tmp_path, monkeypatch):
    """The file above, imported, and its one registry entry (on a copy of the registry)."""
    path = tmp_path / "best_of_group.py"
    path.write_text(NEW_ESTIMATOR_FILE, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("best_of_group", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "best_of_group", module)
    spec.loader.exec_module(module)
    monkeypatch.setattr(registry, "ESTIMATORS", dict(ESTIMATORS))
    register(module.BEST_OF_GROUP)
    return module.BEST_OF_GROUP


def test_a_new_estimator_in_one_file_is_checked_planned_and_computed_by_its_declared_needs(new_estimator):
    _, cpu = RECIPES["cpu-default"]
    cfg = replace(cpu, ppo=replace(cpu.ppo, advantage="best_of_group"))
    # The config checks read its group size...
    alone = replace(cfg, rollout=replace(cfg.rollout, samples_per_prompt=1))
    assert settings_problems(alone) == [
        "ppo.advantage = 'best_of_group' compares the responses to one prompt: "
        "rollout.samples_per_prompt = 1 must be at least 2"
    ]
    assert settings_problems(cfg) == []
    # ...the plan its needs (no critic: one model trains, no critic steps)...
    gae_plan, own_plan = plan(cpu), plan(cfg)
    assert any("critic" in t.name for m in gae_plan.memory for t in m.terms)
    assert not any("critic" in t.name for m in own_plan.memory for t in m.terms)
    # ...and the step its advantages.
    mask = torch.arange(3)[None] < torch.tensor([3, 1, 2, 2])[:, None]
    batch = TensorDict(
        {keys.EPISODE_REWARD: torch.tensor([0.0, 1.0, 0.5, 0.0]), keys.RESPONSE_MASK: mask}, batch_size=[4]
    )
    estimate_advantages(batch, "best_of_group", make_gae(), group_size=2)
    expected = torch.tensor([[-1.0, -1.0, -1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [-0.5, -0.5, 0.0]])
    torch.testing.assert_close(batch[keys.ADVANTAGE].squeeze(-1), expected)


def test_a_name_is_registered_once_and_an_unknown_name_lists_the_known_ones(new_estimator):
    with pytest.raises(ValueError, match="'best_of_group' is already registered"):
        register(new_estimator)
    with pytest.raises(ValueError, match="unknown advantage estimator 'ppo'; expected one of gae, grpo"):
        get_estimator("ppo")


def test_only_orz_gae_needs_a_critic_and_the_group_estimators_need_groups():
    assert [e.name for e in ESTIMATORS.values() if e.needs_critic] == ["gae"]
    assert {e.name for e in ESTIMATORS.values() if e.min_group_size > 1} == {
        "grpo",
        "dr_grpo",
        "rloo",
        "orz_grpo",
    }
    assert {e.name for e in ESTIMATORS.values() if e.token_rewards} == {"gae", "reinforce_pp", "orz_grpo"}
