"""MathAndCodeEnv: one prompt stream, each problem rendered and scored by its own rule."""

from __future__ import annotations

import pytest
from tensordict import NonTensorStack

from orz_rl.config import SandboxConfig
from orz_rl.envs.mixed import MathAndCodeEnv
from orz_rl.problems.problem import CodeTests, Problem
from orz_rl.rewards.code_judge import CodeJudge
from orz_rl.rewards.math_grader import MathGrader
from orz_rl.rewards.sandbox import Sandbox
from tests.sandbox_helpers import ISOLATIONS

MATH = Problem("What is 5 + 7?", "12")
CODE = Problem("Print 5 + 7.", "", tests=CodeTests(stdio=(("", "12\n"),)))


@pytest.fixture(scope="module")
def env():
    with Sandbox(SandboxConfig(isolation=ISOLATIONS[0])) as sandbox, MathGrader(workers=1) as grader:
        judge = CodeJudge(sandbox)
        yield MathAndCodeEnv(
            [MATH, CODE], grader=grader, judge=judge, prompts_per_step=2, samples_per_prompt=2
        )
        judge.close()


def test_math_and_code_responses_are_each_scored_by_their_own_rule(env):
    td = env.reset()
    by_task = {
        "math": [" </think> <answer> \\boxed{12} </answer>", " </think> <answer> \\boxed{13} </answer>"],
        "code": [
            " </think> <answer> ```python\nprint(5 + 7)\n``` </answer>",
            " </think> <answer> 12 </answer>",
        ],
    }
    prompt_ids = td["prompt_id"].tolist()
    responses = [by_task["math" if i == 0 else "code"][k % 2] for k, i in enumerate(prompt_ids)]
    prompts = list(td["text", "prompt"])
    assert all(("Python program" in p) == (i == 1) for p, i in zip(prompts, prompt_ids, strict=True))
    td.set(("text", "response"), NonTensorStack(*responses))
    assert env.step(td)["next", "reward"].view(-1).tolist() == [1.0, 0.0, 1.0, 0.0]
    stats = env.last_score_stats
    assert (stats["reward/math"], stats["reward/code"]) == (0.5, 0.5)
    assert (stats["code/passed"], stats["code/no_code"], stats["grader/no_answer"]) == (1, 1, 0)
