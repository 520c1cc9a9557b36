"""Programming problems: the ORZ prompt asking for a program, rewarded by its unit tests.

The response's program (the last fenced Python block of its last ``<answer>``)
runs in :class:`~orz_rl.sandbox.Sandbox` against the problem's tests; reward 1
iff the response stopped and every test passes (:mod:`orz_rl.code_judge`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from orz_rl.code_judge import CodeJudge
from orz_rl.data import Problem
from orz_rl.prompt import render_code_prompt
from orz_rl.text_env import RuleRewardEnv

#: A dozen programming problems written for orz-rl, in both test forms, each with a reference
#: ``solution`` (for tests and examples; load with :func:`orz_rl.data.load_code_problems`).
SHIPPED_PROBLEMS = Path(__file__).parent / "data" / "code_problems.jsonl"


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

    def __init__(self, problems, *, judge: CodeJudge, **kwargs) -> None:
        super().__init__(problems, **kwargs)
        self.judge = judge

    def render(self, problem: Problem) -> str:
        return render_code_prompt(problem.question, self.bos)

    def score(self, responses: list[str], stopped: torch.Tensor, problems: list[Problem]) -> torch.Tensor:
        rewards, self.last_score_stats = score_code(self.judge, responses, stopped, problems)
        return rewards
