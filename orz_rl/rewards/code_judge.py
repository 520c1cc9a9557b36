"""The code reward: extract the program from a response and run it on the problem's tests.

Reward 1 iff the response stopped (ORZ's stop rule, as for math), its last
``<answer>`` block holds a fenced Python code block, and the program passes
every test; else 0. Tests come in two forms (:class:`~orz_rl.problems.problem.CodeTests`):

* ``stdio`` (LiveCodeBench, Codeforces): the program reads the input on stdin;
  it passes if it exits with status 0 and its stdout matches the expected
  output (exactly, or whitespace-normalised, or with a float tolerance). A
  program that prints the right answer and then crashes fails.
* ``asserts`` (MBPP, HumanEval): test code calling a named function. The program is
  loaded in one sandbox (after the problem's ``prelude``, such as the helpers HumanEval's
  prompt defines); the test code runs in a second sandbox, the judge, with the same prelude,
  and each call of the function goes from the judge to the program and back as a pickled
  value, relayed by this process. The judge reads the program's values with an unpickler that
  builds plain data only (:func:`~orz_rl.rewards.sandbox_runner.loads_data`: sets, tuples,
  floats with ``inf`` and ``nan``, nested containers, no class of the program's) and alone
  decides, and the program cannot reach it: an ``os._exit(0)`` before the tests, a
  ``sys.exit`` inside one, a patched harness or an object whose ``__eq__`` always says yes all
  fail. No test code (a data file's content) runs in the trainer.

:class:`CodeJudge` scores a batch in parallel (one program per sandbox worker),
checks identical (program, tests) pairs once, and counts verdicts per step.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from decimal import Decimal, InvalidOperation

import torch

from orz_rl.problems.problem import CodeTests
from orz_rl.rewards.math_answers import last_answer_block
from orz_rl.rewards.sandbox import Sandbox
from orz_rl.rewards.sandbox_runner import loads_data

logger = logging.getLogger(__name__)

#: Verdicts of :func:`judge`; each is counted per step as ``code/<verdict>``.
VERDICTS = (
    "passed",
    "wrong_answer",
    "runtime_error",
    "syntax_error",
    "timeout",
    "memory",
    "output_limit",
    "sandbox_error",
    "no_code",
    "oversized",
    "cut",
    "bad_test",
)

#: A program longer than this is not run (the tests' solutions are a few hundred characters).
MAX_PROGRAM_CHARS = 50_000

_FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


def extract_program(response: str) -> str | None:
    """The last fenced code block inside the last ``<answer>`` block, or ``None``."""
    block = last_answer_block(response)
    blocks = _FENCE.findall(block) if block is not None else []
    return blocks[-1] if blocks else None


def _floats_equal(a: str, b: str, tol: float) -> bool:
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    return math.isclose(x, y, rel_tol=tol, abs_tol=tol)


def _decimals(line: str) -> list[Decimal] | None:
    try:
        return [Decimal(token) for token in line.split()]
    except InvalidOperation:
        return None


def _lcb_lines_match(got: str, expected: str) -> bool:
    """LiveCodeBench's ``grade_stdio``: as many stripped lines, each equal, or equal as decimals."""
    a, b = [x.strip() for x in got.strip().split("\n")], [x.strip() for x in expected.strip().split("\n")]
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x != y and (_decimals(x) is None or _decimals(x) != _decimals(y)):
            return False
    return True


def outputs_match(got: str, expected: str, compare: str = "exact", tolerance: float = 1e-6) -> bool:
    """Whether a program's stdout ``got`` counts as ``expected`` under ``compare``."""
    if compare == "exact":
        return got.rstrip("\n") == expected.rstrip("\n")
    if compare == "lcb":
        return _lcb_lines_match(got, expected)
    a, b = got.split(), expected.split()
    if compare == "whitespace":
        return a == b
    return len(a) == len(b) and all(_floats_equal(x, y, tolerance) for x, y in zip(a, b, strict=True))


def _verdict(status: str) -> str:
    """The verdict of a run that did not pass, from its sandbox status (``orz_rl.rewards.sandbox.STATUSES``):
    a clean exit with the wrong output is a wrong answer, a failing exit a runtime error."""
    return {"ok": "wrong_answer", "error": "runtime_error"}.get(status, status)


def _with_prelude(program: str, tests: CodeTests) -> str:
    return f"{tests.prelude}\n\n{program}" if tests.prelude else program


def _judge_stdio(program: str, tests: CodeTests, sandbox: Sandbox) -> str:
    program = _with_prelude(program, tests)
    for stdin, expected in tests.stdio:
        result = sandbox.run(program, stdin, seconds=tests.time_limit or None)
        if result.status != "ok" or not outputs_match(
            result.stdout.decode("utf-8", "replace"), expected, tests.compare, tests.tolerance
        ):
            return _verdict(result.status)
    return "passed"


def _judge_asserts(program: str, tests: CodeTests, sandbox: Sandbox) -> str:
    fields = ("prelude", "setup", "asserts", "entry_point")
    harness = json.dumps({name: getattr(tests, name) for name in fields})
    seconds = tests.time_limit or None
    with sandbox.judged_session(_with_prelude(program, tests), harness, seconds) as (session, judge_process):
        while (line := judge_process.next_line()) is not None:
            kind, _, rest = line.partition(" ")
            if kind == "verdict":
                return rest if rest in VERDICTS else "sandbox_error"
            if kind != "call":
                break
            reply = session.call_encoded(rest)
            if reply is None:  # the program ended, hung or flooded: its own verdict, not the judge's
                return _verdict(session.failure or "sandbox_error")
            judge_process.reply(reply)
        if judge_process.ended() == "sandbox_error":
            return "sandbox_error"
    # The judge started and the program still answers, so the test code itself ended early (an
    # exit in it, a test past the judge's own time): the problem's fault, counted apart.
    logger.warning("a judge ended without a verdict; the program's reward is 0 (code/bad_test)")
    return "bad_test"


def _judge_calls(program: str, tests: CodeTests, sandbox: Sandbox) -> str:
    """LiveCodeBench's ``grade_call_based``: the arguments and the expected result are JSON (data:
    read here), the program's result comes back as plain data (a tuple counts as a list) and must
    equal the expected one."""
    name = f"Solution.{tests.entry_point}" if "class Solution" in program else tests.entry_point
    try:
        cases = [([json.loads(a) for a in args.split("\n")], json.loads(out)) for args, out in tests.calls]
    except json.JSONDecodeError:
        return "bad_test"
    # The benchmark's limit per test, for the session's calls together.
    seconds = tests.time_limit * len(cases) or None
    with sandbox.session(_with_prelude(program, tests), seconds) as session:
        for args, expected in cases:
            reply = session.call(name, tuple(args), {})
            if reply is None:
                return _verdict(session.failure or "sandbox_error")
            kind, _, value = reply.partition(" ")
            if kind == "memory":
                return "memory"
            if kind == "raise":
                return "runtime_error"
            if kind != "ok":  # "unpicklable": no value a test can compare
                return "wrong_answer"
            try:
                got = loads_data(value)
            except Exception:  # not plain data (or not a pickle at all): no answer
                return "wrong_answer"
            if (list(got) if isinstance(got, tuple) else got) != expected:
                return "wrong_answer"
    return "passed"


def judge(program: str, tests: CodeTests, sandbox: Sandbox) -> str:
    """The verdict (one of :data:`VERDICTS`) of ``program`` on ``tests``."""
    if len(program) > MAX_PROGRAM_CHARS:
        return "oversized"
    try:
        if tests.asserts:
            return _judge_asserts(program, tests, sandbox)
        if tests.calls:
            return _judge_calls(program, tests, sandbox)
        return _judge_stdio(program, tests, sandbox)
    except Exception:
        # The sandbox could not run it (no process or pipe left, say): one response scores 0
        # and is counted, and the step goes on.
        logger.exception("the sandbox failed on a program; its reward is 0 (code/sandbox_error)")
        return "sandbox_error"


class CodeJudge:
    """Scores a batch of responses to programming problems in a :class:`~orz_rl.rewards.sandbox.Sandbox`.

    Attributes:
        last_stats: verdict counts of the latest :meth:`score` call, per response.
    """

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._pool = ThreadPoolExecutor(sandbox.workers, thread_name_prefix="orz-rl-judge")
        self.last_stats: Counter[str] = Counter()

    def score(
        self, responses: Sequence[str], stopped: Sequence[bool], tests: Sequence[CodeTests]
    ) -> torch.Tensor:
        """Reward of each response: 1.0 iff it stopped and its program passes its problem's tests."""
        verdicts: list[str | None] = []
        keys: list[tuple[str, CodeTests] | None] = []
        pending: dict[tuple[str, CodeTests], Future] = {}
        for response, stop, t in zip(responses, stopped, tests, strict=True):
            program = extract_program(response) if stop else None
            key = None
            if not stop:
                verdicts.append("cut")
            elif program is None:
                verdicts.append("no_code")
            else:
                verdicts.append(None)
                key = (program, t)
                if key not in pending:
                    pending[key] = self._pool.submit(judge, program, t, self.sandbox)
            keys.append(key)
        results = {key: future.result() for key, future in pending.items()}
        verdicts = [results[k] if k is not None else v for v, k in zip(verdicts, keys, strict=True)]
        counts = Counter(verdicts)
        self.last_stats = Counter({v: counts[v] for v in VERDICTS})
        self.last_stats["programs_run"] = len(pending)
        return torch.tensor([float(v == "passed") for v in verdicts])

    def close(self) -> None:
        self._pool.shutdown(wait=True)
