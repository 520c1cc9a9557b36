"""What a prompt of a rule-rewarded task is: :class:`Problem`, and the tests of a programming one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class CodeTests:
    """The tests of one programming problem: ``stdio`` pairs, ``asserts`` on ``entry_point``, or
    functional ``calls`` of it."""

    stdio: tuple[tuple[str, str], ...] = ()
    """``(input, expected output)`` pairs; the program reads stdin and writes stdout."""
    asserts: tuple[str, ...] = ()
    """Assert statements calling ``entry_point`` (also bound as ``candidate``), run in order."""
    entry_point: str = ""
    """The function the asserts call."""
    setup: str = ""
    """Test-side code run before the asserts (imports, helpers such as HumanEval's ``check``)."""
    prelude: str = ""
    """The problem's own code, run before the program and before the test code alike (HumanEval's
    prompt, whose helpers such as ``poly`` both the solution and the tests call; LiveCodeBench's
    imports)."""
    calls: tuple[tuple[str, str], ...] = ()
    """``(arguments, expected result)`` pairs of a functional problem (LiveCodeBench's LeetCode
    style): one JSON value per line per argument, and the result as JSON. ``entry_point`` is
    called, as a method of a new ``Solution`` where the program defines that class."""
    compare: Literal["exact", "whitespace", "float", "lcb"] = "exact"
    """How stdout is compared: byte for byte (after trailing newlines), token by token, tokens
    with numbers equal within ``tolerance``, or LiveCodeBench's rule (line by line, stripped:
    equal, or equal as lists of decimals)."""
    tolerance: float = 1e-6
    """Absolute and relative tolerance of ``compare="float"``."""
    time_limit: float = 0.0
    """Seconds a test may run, as the benchmark sets it (HumanEval: 3 for its one check;
    LiveCodeBench: 6 per test); 0: the sandbox's ``timeout``."""


@dataclass(frozen=True)
class Problem:
    """One prompt of a rule-rewarded task.

    orz-rl's envs read ``question`` and ``answer`` (and, for a preflight message, ``source``);
    a task of one's own may use any object with those attributes.
    """

    question: str
    answer: str
    choices: tuple[tuple[str, str], ...] = field(default=())
    """Multiple-choice options as ``(letter, text)`` pairs (GPQA); empty otherwise."""
    tests: CodeTests | None = None
    """The unit tests of a programming problem (``envs/code.py``); ``None`` for math."""
    groups: tuple[tuple[str, str], ...] = ()
    """``(breakdown, value)`` pairs the evaluation breaks its figures down by: MATH-500's
    ``("level", "3")`` and ``("subject", "Algebra")``, MMLU's subject, MMLU-Pro's category,
    LiveCodeBench's difficulty; empty: none."""
    date: str = ""
    """When the problem was published, ISO 8601 (LiveCodeBench's ``contest_date``); empty: unknown."""
    source: str = field(default="", compare=False)
    """Where it was read (``file: item N``), for messages about it."""
