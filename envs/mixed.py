"""Math and programming problems in one prompt stream, each rendered and scored by its own rule."""

from __future__ import annotations

import torch

from orz_rl.batch_grader import MathGrader, default_grader
from orz_rl.code_judge import CodeJudge
from orz_rl.data import Problem
from orz_rl.envs.code import score_code
from orz_rl.envs.math import score_math
from orz_rl.prompt import render_code_prompt, render_prompt
from orz_rl.text_env import RuleRewardEnv


def render_problem(problem: Problem, bos: str | None = None) -> str:
    """The prompt of a math or a programming problem, each in its own template."""
    render = render_code_prompt if problem.tests is not None else render_prompt
    return render(problem.question, bos)


class MathAndCodeEnv(RuleRewardEnv):
    """Problems with ``tests`` are programming problems (``envs/code.py``), the rest math (``envs/math.py``).

    The step metrics carry both tasks' counts (``grader/*``, ``code/*``) and each
    task's mean reward (``reward/math``, ``reward/code``); a task absent from a
    step reports zeros.
    """

    def __init__(self, problems, *, judge: CodeJudge, grader: MathGrader | None = None, **kwargs) -> None:
        super().__init__(problems, **kwargs)
        self.grader = grader
        self.judge = judge

    def render(self, problem: Problem) -> str:
        return render_problem(problem, self.bos)

    def score(self, responses: list[str], stopped: torch.Tensor, problems: list[Problem]) -> torch.Tensor:
        rewards = torch.zeros(len(responses))
        stats: dict[str, float] = {}
        is_code = [p.tests is not None for p in problems]
        for task, score, scorer in (
            ("math", score_math, self.grader or default_grader()),
            ("code", score_code, self.judge),
        ):
            idx = [i for i, code in enumerate(is_code) if code == (task == "code")]
            part, part_stats = score(
                scorer, [responses[i] for i in idx], stopped[idx], [problems[i] for i in idx]
            )
            rewards[idx] = part.to(rewards.dtype)
            stats.update(part_stats)
            stats[f"reward/{task}"] = float(part.mean()) if idx else 0.0
        self.last_score_stats = stats
        return rewards
