"""Judging HumanEval-style programs as ``orz-rl eval`` does, against HumanEval's own way to run them.

    python bench/eval_code.py [--programs 1000] [--workers 0]

``--programs`` distinct programs for the 164 shipped HumanEval problems (their reference
solutions and the same with the body replaced by ``return None``, alternately; a comment makes
each distinct) are judged through :class:`orz_rl.rewards.code_judge.CodeJudge`, in parallel over
the sandbox's workers: each one a program process and a judge process, both sandboxed, the values
crossing as pickles (``docs/rewards.md``). The baseline, measured in the same run over as many
threads, is HumanEval's own harness without its safeguards: one bare ``python -I -B -c``
subprocess per program (the sandbox's interpreter and flags), holding prompt, program, test and
``check`` in one process as ``human_eval/execution.py`` joins them (safe here only because these
programs are HumanEval's own). Printed: programs per second for each, their ratio, and how many
passed (the same count from both, or the script fails).
"""

from __future__ import annotations

import gzip
import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import tyro

from orz_rl.config import SandboxConfig
from orz_rl.problems.formats import load_code_problems
from orz_rl.problems.humaneval import HUMANEVAL_FILE, reference_program
from orz_rl.rewards.code_judge import CodeJudge
from orz_rl.rewards.sandbox import Sandbox


@dataclass(frozen=True)
class Args:
    """What to benchmark."""

    programs: int = 1000
    """Programs judged (each distinct, so none is skipped as a repeat)."""
    workers: int = 0
    """Sandbox workers, and threads of the baseline (0: one per CPU core)."""
    timeout: float = 10.0
    """Seconds per program, in both (HumanEval's harness uses 3; the sandbox's default is 10)."""


def programs(n: int) -> tuple[list[dict], list[str]]:
    """``n`` (item, program) pairs: the reference solution and an empty body, alternately."""
    items = [json.loads(line) for line in gzip.decompress(HUMANEVAL_FILE.read_bytes()).splitlines()]
    chosen, out = [], []
    for k in range(n):
        item = items[(k // 2) % len(items)]
        body = reference_program(item) if k % 2 == 0 else item["prompt"] + "    return None\n"
        chosen.append(item)
        out.append(f"{body}\n# program {k}\n")
    return chosen, out


def bare_run(python: str, item: dict, program: str, timeout: float) -> bool:
    """HumanEval's harness, unsandboxed: prompt + program + test + check in one process (the
    sandbox's interpreter and flags)."""
    source = f"{item['prompt']}\n{program}\n{item['test']}\ncheck({item['entry_point']})\n"
    command = [python, "-I", "-B", "-c", source]
    try:
        return subprocess.run(command, capture_output=True, timeout=timeout).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def main(args: Args) -> None:
    items, progs = programs(args.programs)
    problems = {p.tests.entry_point + p.tests.setup: p for p in load_code_problems(HUMANEVAL_FILE)}
    tests = [problems[i["entry_point"] + i["test"]].tests for i in items]
    responses = [f" </think> <answer> ```python\n{p}\n``` </answer>" for p in progs]
    with Sandbox(SandboxConfig(workers=args.workers, timeout=args.timeout)) as sandbox:
        judge = CodeJudge(sandbox)
        judge.score(responses[:8], [True] * 8, tests[:8])  # warm the page cache and the pool
        start = time.perf_counter()
        judged = int(judge.score(responses, [True] * len(responses), tests).sum())
        sandboxed = time.perf_counter() - start
        judge.close()
        workers, python = sandbox.workers, sandbox.python

    with ThreadPoolExecutor(workers) as pool:
        start = time.perf_counter()
        runs = pool.map(lambda ip: bare_run(python, *ip, args.timeout), zip(items, progs, strict=True))
        bare = sum(runs)
        baseline = time.perf_counter() - start
    assert judged == bare == (args.programs + 1) // 2, f"passed: judge {judged}, bare {bare}"

    n = args.programs
    print(f"sandbox: {sandbox.description}")
    print("| measure | value |\n|---|---|")
    print(f"| programs judged ({n}, {workers} workers; {judged} pass) | {sandboxed:.2f} s |")
    print(f"| orz-rl's judge (program + judge sandboxes) | {n / sandboxed:.1f} programs/s |")
    print(f"| HumanEval's harness, bare `python -c` ({workers} threads) | {n / baseline:.1f} programs/s |")
    print(f"| judge / bare throughput | {baseline / sandboxed:.2f}x |")


if __name__ == "__main__":
    main(tyro.cli(Args))
