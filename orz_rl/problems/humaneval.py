"""HumanEval (Chen et al., 2021) in its published format, and the prompt it is usually asked with.

An item is ``{"task_id", "prompt", "entry_point", "canonical_solution", "test"}``: ``prompt`` is
the function's signature and docstring (and, for some problems, helpers such as ``poly`` or
``encode_cyclic`` that the tests call too), ``test`` defines ``check(candidate)``. As
:class:`~orz_rl.problems.problem.CodeTests` the prompt is the ``prelude`` (run before the program
and before the tests), ``test`` the ``setup`` and ``check(<entry_point>)`` the one assert, the way
HumanEval's own harness runs them (``human_eval/execution.py``: prompt, completion, test and
``check`` in one program), except that the test runs in a judge of its own
(:mod:`orz_rl.rewards.code_judge`).

The question asks for a whole program, as instruction-following evaluations ask for HumanEval
(EvalPlus's prompt), inside ORZ's code template. ``humaneval/`` ships the 164 problems as OpenAI's
``human-eval`` 1.0.3 distributes them (MIT, its ``LICENSE`` beside them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orz_rl.problems.problem import CodeTests, Problem

#: The 164 problems, as published (package data).
HUMANEVAL_FILE = Path(__file__).resolve().parent / "humaneval" / "HumanEval.jsonl.gz"

#: HumanEval's own time limit for one problem's check (``human_eval/execution.py``, ``timeout=3.0``).
HUMANEVAL_SECONDS = 3.0

#: Keys of a HumanEval item.
HUMANEVAL_KEYS = frozenset({"task_id", "prompt", "entry_point", "canonical_solution", "test"})

_INSTRUCTION = (
    "Please provide a self-contained Python script that solves the following problem in a markdown "
    "code block:\n```python\n{prompt}\n```"
)


def is_humaneval_item(item: Any) -> bool:
    """Whether ``item`` has HumanEval's keys (and no others)."""
    return isinstance(item, dict) and set(item) == HUMANEVAL_KEYS


def humaneval_problem(item: dict[str, Any]) -> Problem:
    """One HumanEval item as a programming problem; its reference program is
    :func:`reference_program`."""
    entry_point, prompt = str(item["entry_point"]), str(item["prompt"])
    if not entry_point.isidentifier():
        raise ValueError(f"'entry_point' must be a function name, got {entry_point!r}")
    for part in (prompt, str(item["test"])):
        compile(part, "<humaneval>", "exec")  # a SyntaxError names the item at load, not at scoring
    tests = CodeTests(
        asserts=(f"check({entry_point})",),
        entry_point=entry_point,
        setup=str(item["test"]),
        prelude=prompt,
        time_limit=HUMANEVAL_SECONDS,
    )
    return Problem(question=_INSTRUCTION.format(prompt=prompt.strip()), answer="", tests=tests)


def reference_program(item: dict[str, Any]) -> str:
    """The program HumanEval's own harness judges for the canonical solution: prompt + body."""
    return str(item["prompt"]) + str(item["canonical_solution"])
