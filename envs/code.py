"""Programming problems: the ORZ prompt asking for a program, rewarded by its unit tests.

The response's program (the last fenced Python block of its last ``<answer>``)
runs in :class:`~orz_rl.rewards.sandbox.Sandbox` against the problem's tests; reward 1
iff the response stopped and every test passes (:mod:`orz_rl.rewards.code_judge`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from orz_rl.config import DataConfig, TrainConfig
from orz_rl.envs.rule_reward import RuleRewardEnv
from orz_rl.envs.task import EnvArgs, Task
from orz_rl.problems.formats import load_code_problems
from orz_rl.problems.problem import Problem
from orz_rl.problems.prompts import render_code_prompt
from orz_rl.rewards.code_judge import CodeJudge, extract_program

#: A dozen programming problems written for orz-rl, in both test forms, each with a reference
#: ``solution`` (for tests and examples; load with :func:`orz_rl.problems.formats.load_code_problems`).
SHIPPED_PROBLEMS = Path(__file__).parent / "data" / "code_problems.jsonl"


def render_code(problem: Problem, bos: str | None = None) -> str:
    """The ORZ prompt of a programming problem (:data:`~orz_rl.problems.prompts.CODE_TEMPLATE`)."""
    return render_code_prompt(problem.question, bos)


def score_code(
    judge: CodeJudge, responses: list[str], stopped: torch.Tensor, problems: list[Problem]
) -> tuple[torch.Tensor, dict[str, float]]:
    """Rewards of code responses, the judge's verdict counts as ``code/<verdict>`` (and
    ``code/programs_run``), and ``code/pass_rate``."""
    rewards = judge.score(responses, stopped.tolist(), [p.tests for p in problems])
    stats = {f"code/{k}": float(v) for k, v in judge.last_stats.items()}
    stats["code/pass_rate"] = float(rewards.mean()) if len(responses) else 0.0
    return rewards, stats


class CodeEnv(RuleRewardEnv):
    """Programming prompts in the ORZ template; reward 1 iff stopped and the program passes its tests.

    ``judge`` runs the programs (in parallel, sandboxed); its verdict counts
    (timeouts, memory kills, syntax errors...) are :attr:`last_score_stats`.
    """

    def __init__(self, problems: Sequence[Problem], *, judge: CodeJudge, **kwargs) -> None:
        super().__init__(problems, **kwargs)
        self.judge = judge

    def render(self, problem: Problem) -> str:
        return render_code(problem, self.bos)

    def score(self, responses: list[str], stopped: torch.Tensor, problems: list[Problem]) -> torch.Tensor:
        rewards, self.last_score_stats = score_code(self.judge, responses, stopped, problems)
        return rewards


def sandbox_problems(cfg: TrainConfig) -> list[str]:
    """An unisolated sandbox runs untrusted code: only when the configuration says so."""
    if cfg.sandbox.isolation == "none" and not cfg.sandbox.allow_unisolated:
        return [
            "sandbox.isolation = 'none' runs untrusted code with network access; "
            "set sandbox.allow_unisolated to accept that"
        ]
    return []


def _check(cfg: TrainConfig) -> list[str]:
    found = sandbox_problems(cfg)
    if not Path(cfg.data.train_file).is_file():
        found.append(f"data.train_file {cfg.data.train_file!r} (programming problems) does not exist")
    return found


def _load(data: DataConfig) -> list[Problem]:
    return load_code_problems(data.train_file)


def make_code_env(problems: Sequence[Problem], args: EnvArgs) -> CodeEnv:
    return CodeEnv(problems, judge=args.services.code_judge, **args.rule_reward_kwargs())


TASK = Task(
    name="code",
    summary="programming problems (data.train_file, JSON Lines), reward 1 iff the program passes its tests",
    make_env=make_code_env,
    load_problems=_load,
    load_benchmark=load_code_problems,
    render=render_code,
    check=_check,
    extract_answer=extract_program,
    majority_vote=False,
)
