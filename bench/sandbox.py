"""Running policy-written programs: the warm sandbox and a fresh interpreter per program,
against the same program run bare.

    python bench/sandbox.py [--programs 1000] [--workers 0]

``--programs`` distinct small programs (half correct, half wrong; half stdio
tests, half assert tests on a function) are scored through
:class:`orz_rl.rewards.code_judge.CodeJudge`, in parallel over the sandbox's workers,
as a training step scores them: once by a warm sandbox (each program forked from a
ready interpreter, the default) and once by a cold one (``sandbox.warm=False``: a fresh
interpreter per program). The baseline, measured in the same run with the same
interpreter, interleaved with the sandboxed runs, is the same small stdio program as a
bare ``python -I -c`` subprocess: no isolation and no limits. Printed: programs per
second, one run's latency, and its ratio to the bare run.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from dataclasses import dataclass, replace

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


def _throughput(sandbox: Sandbox, n: int) -> float:
    """Seconds to score ``n`` distinct programs through the judge, as a training step does."""
    judge = CodeJudge(sandbox)
    responses, tests = batch(n)
    judge.score(responses[:8], [True] * 8, tests[:8])  # warm the page cache and the pool
    start = time.perf_counter()
    rewards = judge.score(responses, [True] * len(responses), tests)
    elapsed = time.perf_counter() - start
    judge.close()
    assert rewards.sum().item() == n // 2, "half the programs are correct"
    return elapsed


def main(args: Args) -> None:
    cfg = SandboxConfig(workers=args.workers)
    with Sandbox(cfg) as warm, Sandbox(replace(cfg, warm=False)) as cold:
        assert warm.warm, f"the warm start failed here: {warm.description}"
        warm.start_servers()
        elapsed = {name: _throughput(sb, args.programs) for name, sb in (("warm", warm), ("cold", cold))}

        program = "a, b = map(int, input().split())\nprint(a + b)"
        times = {"warm": [], "cold": [], "bare": []}
        for _ in range(args.latency_runs):  # interleaved, so that drift touches all three alike
            for name, sb in (("warm", warm), ("cold", cold)):
                t = time.perf_counter()
                assert sb.run(program, "3 4\n").stdout == b"7\n"
                times[name].append(time.perf_counter() - t)
            t = time.perf_counter()
            out = subprocess.run([warm.python, "-I", "-c", program], input=b"3 4\n", capture_output=True)
            times["bare"].append(time.perf_counter() - t)
            assert out.stdout == b"7\n"

    median = {name: statistics.median(ts) for name, ts in times.items()}
    print(f"sandbox: {warm.description}")
    print("| measure | warm | cold (fresh interpreter) |\n|---|---|---|")
    row = " | ".join(f"{elapsed[n]:.2f} s" for n in ("warm", "cold"))
    print(f"| {args.programs} programs scored, {warm.workers} workers | {row} |")
    row = " | ".join(f"{args.programs / elapsed[n]:.0f} programs/s" for n in ("warm", "cold"))
    print(f"| throughput | {row} |")
    row = " | ".join(f"{median[n] * 1e3:.1f} ms" for n in ("warm", "cold"))
    print(f"| one run (median of {args.latency_runs}) | {row} |")
    bare = median["bare"]
    row = " | ".join(f"{median[n] / bare:.2f}x (+{(median[n] - bare) * 1e3:.1f} ms)" for n in elapsed)
    print(f"| one run / the same program bare, `python -I -c` ({bare * 1e3:.1f} ms) | {row} |")
    print(f"| throughput, warm / cold | {elapsed['cold'] / elapsed['warm']:.2f}x | |")


if __name__ == "__main__":
    main(tyro.cli(Args))
