"""ORZ's math task: the ORZ prompt template, rewarded by the answer checker.

A new rule-rewarded task is a subclass like this one (how to render a problem, how to
score a batch of responses) and a :class:`~orz_rl.envs.task.Task` that names it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from orz_rl.envs.rule_reward import RuleRewardEnv
from orz_rl.envs.task import EnvArgs, Task
from orz_rl.problems.problem import Problem
from orz_rl.problems.prompts import render_choice_prompt, render_prompt
from orz_rl.rewards.math_answers import extract_answer
from orz_rl.rewards.math_grader import STAT_NAMES, MathGrader, default_grader


def render_math(problem: Problem, bos: str | None = None) -> str:
    """The ORZ prompt of a math problem; a multiple-choice one (with ``choices``, listed in its
    question) asks for the letter of the option, which is what its truth is."""
    if problem.choices:
        return render_choice_prompt(problem.question, [letter for letter, _ in problem.choices], bos)
    return render_prompt(problem.question, bos)


def score_math(
    grader: MathGrader, responses: list[str], stopped: torch.Tensor, problems: list[Problem]
) -> tuple[torch.Tensor, dict[str, float]]:
    """Rewards of math responses, and the grader's counts as ``grader/<name>``."""
    rewards = grader.score(
        responses, stopped.tolist(), [p.answer for p in problems], [p.choices for p in problems]
    )
    return rewards, {f"grader/{k}": float(grader.last_stats[k]) for k in STAT_NAMES}


class MathEnv(RuleRewardEnv):
    """Math prompts in the ORZ template; reward 1 iff stopped and the boxed answer is right.

    ``grader`` scores each batch in worker processes with a time limit per check
    (default: the process-wide :func:`~orz_rl.rewards.math_grader.default_grader`); its
    counts (timeouts, failures, ...) are :attr:`last_score_stats`.
    """

    def __init__(self, problems: Sequence[Problem], *, grader: MathGrader | None = None, **kwargs) -> None:
        super().__init__(problems, **kwargs)
        self.grader = grader

    def render(self, problem: Problem) -> str:
        return render_math(problem, self.bos)

    def score(self, responses: list[str], stopped: torch.Tensor, problems: list[Problem]) -> torch.Tensor:
        rewards, self.last_score_stats = score_math(
            self.grader or default_grader(), responses, stopped, problems
        )
        return rewards


def make_math_env(problems: Sequence[Problem], args: EnvArgs) -> MathEnv:
    return MathEnv(problems, grader=args.services.math_grader, **args.rule_reward_kwargs())


TASK = Task(
    name="math",
    summary="ORZ's task: math problems, reward 1 iff the boxed answer equals the truth (math-verify)",
    make_env=make_math_env,
    render=render_math,
    extract_answer=extract_answer,
)
