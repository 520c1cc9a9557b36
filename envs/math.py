"""ORZ's math task: the ORZ prompt template, rewarded by the answer checker.

A new rule-rewarded task is a subclass like this one: how to render a problem,
how to score a batch of responses.
"""

from __future__ import annotations

import torch

from orz_rl.batch_grader import STAT_NAMES, MathGrader, default_grader
from orz_rl.data import Problem
from orz_rl.prompt import render_prompt
from orz_rl.text_env import RuleRewardEnv


class MathEnv(RuleRewardEnv):
    """Math prompts in the ORZ template; reward 1 iff stopped and the boxed answer is right.

    ``grader`` scores each batch in worker processes with a time limit per check
    (default: the process-wide :func:`~orz_rl.batch_grader.default_grader`); its
    counts (timeouts, failures, ...) are :attr:`last_score_stats`.
    """

    def __init__(self, problems, *, grader: MathGrader | None = None, **kwargs) -> None:
        super().__init__(problems, **kwargs)
        self.grader = grader

    def render(self, problem: Problem) -> str:
        return render_prompt(problem.question, self.bos)

    def score(self, responses: list[str], stopped: torch.Tensor, problems: list[Problem]) -> torch.Tensor:
        rewards, self.last_score_stats = score_math(
            self.grader or default_grader(), responses, stopped, problems
        )
        return rewards


def score_math(
    grader: MathGrader, responses: list[str], stopped: torch.Tensor, problems: list[Problem]
) -> tuple[torch.Tensor, dict[str, float]]:
    """Rewards of math responses, and the grader's counts as ``grader/<name>``."""
    rewards = grader.score(
        responses, stopped.tolist(), [p.answer for p in problems], [p.choices for p in problems]
    )
    return rewards, {f"grader/{k}": float(grader.last_stats[k]) for k in STAT_NAMES}
