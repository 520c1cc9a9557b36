"""Math and programming problems in one prompt stream, each rendered and scored by its own rule."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from orz_rl.config import DataConfig, TrainConfig
from orz_rl.envs.code import render_code, sandbox_problems, score_code
from orz_rl.envs.math import render_math, score_math
from orz_rl.envs.rule_reward import RuleRewardEnv
from orz_rl.envs.task import EnvArgs, Task, load_train_file, train_file_problems
from orz_rl.problems.formats import load_any_problems, load_code_problems
from orz_rl.problems.problem import Problem
from orz_rl.problems.toy_task import write_code_file
from orz_rl.rewards.code_judge import CodeJudge
from orz_rl.rewards.math_answers import extract_answer
from orz_rl.rewards.math_grader import MathGrader, default_grader


def render_problem(problem: Problem, bos: str | None = None) -> str:
    """The prompt of a math or a programming problem, each in its own template."""
    return (render_code if problem.tests is not None else render_math)(problem, bos)


class MathAndCodeEnv(RuleRewardEnv):
    """Problems with ``tests`` are programming problems (``envs/code.py``), the rest math (``envs/math.py``).

    The step metrics carry both tasks' counts (``grader/*``, ``code/*``) and each
    task's mean reward (``reward/math``, ``reward/code``); a task absent from a
    step reports zeros.
    """

    def __init__(
        self, problems: Sequence[Problem], *, judge: CodeJudge, grader: MathGrader | None = None, **kwargs
    ) -> None:
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


def _check(cfg: TrainConfig) -> list[str]:
    found = sandbox_problems(cfg) + train_file_problems(cfg)
    if not cfg.data.code_file:
        found.append("data.code_file: task 'mixed' needs a file of programming problems")
    elif not cfg.data.generate_toy_code and not Path(cfg.data.code_file).is_file():
        found.append(f"data.code_file {cfg.data.code_file!r} does not exist")
    return found


def _load(data: DataConfig) -> list[Problem]:
    """The math problems of ``data.train_file``, then the programming problems of ``data.code_file``
    (each written first where the recipe generates it)."""
    if data.generate_toy_code:
        write_code_file(data.code_file, seed=data.seed, max_operand=data.toy_max_operand)
    return load_train_file(data) + load_code_problems(data.code_file)


def make_mixed_env(problems: Sequence[Problem], args: EnvArgs) -> MathAndCodeEnv:
    services = args.services
    return MathAndCodeEnv(
        problems, grader=services.math_grader, judge=services.code_judge, **args.rule_reward_kwargs()
    )


TASK = Task(
    name="mixed",
    summary="math (data.train_file) and programming problems (data.code_file) in one stream",
    make_env=make_mixed_env,
    load_problems=_load,
    load_benchmark=load_any_problems,
    render=render_problem,
    check=_check,
    extract_answer=extract_answer,
)
