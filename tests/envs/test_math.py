"""MathEnv: the ORZ reward rule through a real TorchRL env step."""

from __future__ import annotations

import pytest
import torch
from tensordict import NonTensorStack

from orz_rl.envs.math import MathEnv
from orz_rl.problems.problem import Problem

BOX_INSIDE = " think </think> <answer> \\boxed{12} </answer>"
BOX_OUTSIDE = " think \\boxed{12} </think> <answer> 12 </answer>"


def _step(responses: list[str], answer: str = "12"):
    env = MathEnv([Problem("What is 5 + 7?", answer)], prompts_per_step=1, samples_per_prompt=len(responses))
    td = env.reset()
    td.set(("text", "response"), NonTensorStack(*responses))
    return env.step(td)["next"]


@pytest.mark.parametrize(
    "response,expected",
    [
        (BOX_INSIDE, 1.0),  # stopped on </answer>, boxed inside, right
        (BOX_INSIDE.replace("{12}", "{13}"), 0.0),  # stopped, boxed inside, wrong
        (BOX_OUTSIDE, 0.0),  # stopped, boxed only outside <answer>, right
        (BOX_OUTSIDE.replace("{12}", "{13}"), 0.0),  # stopped, boxed outside, wrong
        (BOX_INSIDE.removesuffix("</answer>"), 0.0),  # cut by the length limit, boxed inside, right
        (BOX_INSIDE.replace("{12}", "{13}").removesuffix("</answer>"), 0.0),  # cut, inside, wrong
        (" think \\boxed{12}", 0.0),  # cut, boxed outside, right
        (" <answer> 12 </answer>", 0.0),  # stopped, no box at all
        (BOX_INSIDE.replace("{12}", "{\\frac{24}{2}}"), 1.0),  # equal value, other surface form
        (" </think> <answer> \\boxed{1} \\boxed{12} </answer>", 1.0),  # the last box counts
        (" </think> <answer> \\boxed{12} \\boxed{1} </answer>", 0.0),
        (" </think> <answer> \\boxed{12} </answer>User:", 1.0),  # ended on another stop string
    ],
)
def test_reward_truth_table(response, expected):
    out = _step([response])
    assert out["reward"].item() == expected


def test_reward_spec_declares_a_zero_one_reward():
    env = MathEnv([Problem("q", "1")], prompts_per_step=2, samples_per_prompt=3)
    spec = env.reward_spec
    assert spec.shape == (6, 1)
    assert spec.space.low.min().item() == 0.0 and spec.space.high.max().item() == 1.0


def test_reset_repeats_each_prompt_adjacently():
    problems = [Problem(f"What is {i} + 0?", str(i)) for i in range(10)]
    env = MathEnv(problems, prompts_per_step=3, samples_per_prompt=4, seed=1)
    ids = env.reset()["prompt_id"]
    assert ids.shape == (12,)
    groups = ids.view(3, 4)
    assert (groups == groups[:, :1]).all() and len(set(groups[:, 0].tolist())) == 3
    prompts = env.reset()["text", "prompt"]
    assert all("This is the problem:\nWhat is" in p for p in list(prompts))


def test_a_pass_over_the_data_visits_every_prompt_once():
    problems = [Problem(f"What is {i} + 0?", str(i)) for i in range(12)]
    env = MathEnv(problems, prompts_per_step=4, samples_per_prompt=1)
    seen = torch.cat([env.reset()["prompt_id"] for _ in range(3)])
    assert sorted(seen.tolist()) == list(range(12))
