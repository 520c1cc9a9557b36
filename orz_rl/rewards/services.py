"""The reward workers a run's tasks share, each started on first use.

A task's env asks for what its rule needs: the math grader's process pool, or the sandbox
with its code judge. A run whose task never asks for the sandbox never starts one; one that
does starts it (and announces its isolation) when the env is made, before any model loads.
"""

from __future__ import annotations

import os

from orz_rl.config import RewardConfig, SandboxConfig
from orz_rl.rewards.code_judge import CodeJudge
from orz_rl.rewards.math_grader import MathGrader
from orz_rl.rewards.sandbox import Sandbox


class RewardServices:
    """The math grader and the code judge of one run, started lazily and closed together.

    Args:
        reward: the math grader's workers and time limit.
        sandbox: where and within what limits programs run.
    """

    def __init__(
        self, reward: RewardConfig = RewardConfig(), sandbox: SandboxConfig = SandboxConfig()
    ) -> None:
        self.reward = reward
        self.sandbox_config = sandbox
        self._grader: MathGrader | None = None
        self._sandbox: Sandbox | None = None
        self._judge: CodeJudge | None = None

    @property
    def math_grader(self) -> MathGrader:
        """ORZ's math reward checker, in worker processes with a time limit per check."""
        if self._grader is None:
            workers = self.reward.workers or os.cpu_count() or 1
            self._grader = MathGrader(workers=workers, timeout=self.reward.timeout)
        return self._grader

    @property
    def sandbox(self) -> Sandbox:
        """The sandbox untrusted programs run in: the code judge's, and the Python tool's."""
        if self._sandbox is None:
            self._sandbox = Sandbox(self.sandbox_config)
        return self._sandbox

    @property
    def code_judge(self) -> CodeJudge:
        """The code reward's judge, running programs in the sandbox."""
        if self._judge is None:
            self._judge = CodeJudge(self.sandbox)
        return self._judge

    def close(self) -> None:
        """Stop whatever was started."""
        if self._grader is not None:
            self._grader.close()
        if self._judge is not None:
            self._judge.close()
        if self._sandbox is not None:
            self._sandbox.close()
        self._grader = self._judge = self._sandbox = None

    def __enter__(self) -> RewardServices:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
