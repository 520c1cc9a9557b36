"""ORZ's math task: the ORZ prompt template, rewarded by the answer checker.

A new rule-rewarded task is a subclass like this one: how to render a problem,
how to score a batch of responses.
"""

from __future__ import annotations

import torch

from orz_rl.data import Problem
from orz_rl.grader import math_reward
from orz_rl.prompt import render_prompt
from orz_rl.text_env import RuleRewardEnv


class MathEnv(RuleRewardEnv):
    """Math prompts in the ORZ template; reward 1 iff stopped and the boxed answer is right."""

    def render(self, problem: Problem) -> str:
        return render_prompt(problem.question, self.bos)

    def score(self, responses: list[str], stopped: torch.Tensor, problems: list[Problem]) -> torch.Tensor:
        return torch.tensor(
            [
                math_reward(r, bool(s), p.answer, p.choices)
                for r, s, p in zip(responses, stopped.tolist(), problems, strict=True)
            ]
        )
