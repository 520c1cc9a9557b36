"""Running policy-written programs: the sandbox against a bare ``python -c pass``.

    python bench/sandbox.py [--programs 1000] [--workers 0]

``--programs`` distinct small programs (half correct, half wrong; half stdio
tests, half assert tests on a function) are scored through
:class:`orz_rl.rewards.code_judge.CodeJudge`, in parallel over the sandbox's workers,
as a training step scores them. The baseline, measured in the same run with the
same interpreter, is a bare ``python -c pass`` subprocess: the least any
one-process-per-program runner can cost. Printed: programs per second, the
sandbox's per-program latency run one at a time, the baseline's, and their ratio.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from dataclasses import dataclass

import tyro

from orz_rl.config import SandboxConfig
from orz_rl.problems.problem import CodeTests
from orz_rl.rewards.code_judge import CodeJudge
from orz_rl.rewards.sandbox import Sandbox

STDIO = CodeTests(stdio=(("3 4\n", "7\n"), ("10 -2\n", "8\n")))
ASSERTS = CodeTests(asserts=("assert add(1, 2) == 3", "assert add(-5, 5) == 0"), entry_point="add")


@dataclass(frozen=True)
class Args:
    """What to benchmark."""

    programs: int = 1000
    """Programs in the batch (each distinct, so none is skipped as a repeat)."""
    workers: int = 0
    """Sandbox workers (0: one per CPU core)."""
    latency_runs: int = 100
    """Runs of one program at a time, for the per-program latencies."""


def batch(n: int) -> tuple[list[str], list[CodeTests]]:
    responses, tests = [], []
    for k in range(n):
        wrong = k % 2  # a distinct constant per program defeats the judge's de-duplication
        if k % 4 < 2:
            program = f"a, b = map(int, input().split())\nprint(a + b + {wrong})  # {k}"
            tests.append(STDIO)
        else:
            program = f"def add(a, b):\n    return a + b + {wrong}  # {k}"
            tests.append(ASSERTS)
        responses.append(f" </think> <answer> ```python\n{program}\n``` </answer>")
    return responses, tests


def main(args: Args) -> None:
    with Sandbox(SandboxConfig(workers=args.workers)) as sandbox:
        judge = CodeJudge(sandbox)
        responses, tests = batch(args.programs)
        judge.score(responses[:8], [True] * 8, tests[:8])  # warm the page cache and the pool
        start = time.perf_counter()
        rewards = judge.score(responses, [True] * len(responses), tests)
        elapsed = time.perf_counter() - start
        judge.close()
        assert rewards.sum().item() == args.programs // 2, "half the programs are correct"

        program = "a, b = map(int, input().split())\nprint(a + b)"
        sandboxed = []
        for _ in range(args.latency_runs):
            t = time.perf_counter()
            assert sandbox.run(program, "3 4\n").stdout == b"7\n"
            sandboxed.append(time.perf_counter() - t)
        bare = []
        for _ in range(args.latency_runs):
            t = time.perf_counter()
            subprocess.run([sandbox.python, "-c", "pass"], check=True)
            bare.append(time.perf_counter() - t)

    per_sandbox, per_bare = statistics.median(sandboxed), statistics.median(bare)
    print(f"sandbox: {sandbox.description}")
    print("| measure | value |\n|---|---|")
    print(f"| programs scored ({args.programs}, {sandbox.workers} workers) | {elapsed:.2f} s |")
    print(f"| throughput | {args.programs / elapsed:.0f} programs/s |")
    print(f"| one sandboxed run (median of {args.latency_runs}) | {per_sandbox * 1e3:.1f} ms |")
    print(f"| bare `python -c pass` subprocess (median of {args.latency_runs}) | {per_bare * 1e3:.1f} ms |")
    print(f"| sandbox / bare | {per_sandbox / per_bare:.2f}x (+{(per_sandbox - per_bare) * 1e3:.1f} ms) |")


if __name__ == "__main__":
    main(tyro.cli(Args))
