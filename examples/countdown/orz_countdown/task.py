"""The Countdown task: its problems, its prompt in ORZ's template, its env and the :class:`Task`.

Everything here is orz-rl's public API: :class:`~orz_rl.envs.RuleRewardEnv` (render a problem,
score a batch), :class:`~orz_rl.envs.Task` and :class:`~orz_rl.envs.EnvArgs`, the ORZ
conversation, the answer-box extraction and the file loader.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from orz_countdown.arithmetic import VERDICTS, judge
from orz_rl.config import DataConfig
from orz_rl.envs import EnvArgs, RuleRewardEnv, Task
from orz_rl.problems.formats import load_items
from orz_rl.problems.prompts import render_prompt
from orz_rl.rewards.math_answers import extract_answer

#: 64 problems of 2 to 4 numbers, each solvable (``{"numbers": [...], "target": N}`` per line).
SHIPPED = Path(__file__).parent / "data" / "countdown.jsonl"


@dataclass(frozen=True)
class CountdownProblem:
    """Numbers and a target; ``question`` and ``answer`` are what orz-rl's envs read."""

    numbers: tuple[int, ...]
    target: int
    source: str = field(default="", compare=False)

    @property
    def question(self) -> str:
        listed = ", ".join(map(str, self.numbers))
        return (
            f"Using the numbers {listed}, each exactly once, and + - * / with parentheses, "
            f"make {self.target}. Answer with the expression."
        )

    @property
    def answer(self) -> str:
        return str(self.target)


def _item(item: Any) -> CountdownProblem:
    numbers, target = item["numbers"], item["target"]
    if not isinstance(numbers, list) or not numbers or not all(type(n) is int and n > 0 for n in numbers):
        raise ValueError("'numbers' must be a non-empty list of positive integers")
    if type(target) is not int:
        raise ValueError("'target' must be an integer")
    return CountdownProblem(tuple(numbers), target)


def load_countdown(path: str | Path) -> list[CountdownProblem]:
    """Countdown problems, one ``{"numbers": [...], "target": N}`` per line (or a JSON list)."""
    return load_items(path, _item, "countdown problem", '{"numbers": [3, 5, 2], "target": 16}')


def render_countdown(problem: CountdownProblem, bos: str | None = None) -> str:
    """The ORZ prompt (its conversation; the boxed answer is the expression)."""
    return render_prompt(problem.question, bos)


class CountdownEnv(RuleRewardEnv):
    """Reward 1 iff the response stopped and its boxed expression uses each number once and hits
    the target. ``last_score_stats`` counts each verdict as ``countdown/<verdict>``, with
    ``countdown/no_answer`` (no box) and ``countdown/cut`` (no stop)."""

    def render(self, problem: CountdownProblem) -> str:
        return render_countdown(problem, self.bos)

    def score(
        self, responses: list[str], stopped: torch.Tensor, problems: list[CountdownProblem]
    ) -> torch.Tensor:
        verdicts = []
        for response, stop, problem in zip(responses, stopped.tolist(), problems, strict=True):
            expression = extract_answer(response) if stop else None
            if not stop:
                verdicts.append("cut")
            elif expression is None:
                verdicts.append("no_answer")
            else:
                verdicts.append(judge(expression, list(problem.numbers), problem.target))
        counts = Counter(verdicts)
        self.last_score_stats = {f"countdown/{v}": counts[v] for v in (*VERDICTS, "no_answer", "cut")}
        return torch.tensor([float(v == "correct") for v in verdicts])


def make_countdown_env(problems: Sequence[CountdownProblem], args: EnvArgs) -> CountdownEnv:
    return CountdownEnv(problems, **args.rule_reward_kwargs())


def _load(data: DataConfig) -> list[CountdownProblem]:
    return load_countdown(data.train_file)


TASK = Task(
    name="countdown",
    summary="the Countdown numbers game: an expression of the given numbers that hits the target",
    make_env=make_countdown_env,
    load_problems=_load,
    load_benchmark=load_countdown,
    render=render_countdown,
    extract_answer=extract_answer,
)
