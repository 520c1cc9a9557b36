"""MBPP (Austin et al., 2021) in its published formats, and the prompt it is usually asked with.

The original release (``mbpp.jsonl``) has ``{"task_id", "text", "code", "test_list",
"test_setup_code", "challenge_test_list"}``; the sanitized one (``sanitized-mbpp.json``)
``{"task_id", "prompt", "code", "test_imports", "test_list", "source_file"}``. As
:class:`~orz_rl.problems.problem.CodeTests`: ``test_list`` are the asserts (the challenge tests
are not part of the usual score), ``test_setup_code`` / ``test_imports`` the setup, and the entry
point the function the first assert calls that the reference ``code`` defines. The question is
the paper's prompt (the task and its tests) inside ORZ's code template.

MBPP (CC BY 4.0) is not shipped: ``orz-rl eval --benchmarks mbpp.jsonl`` reads a user's copy.
"""

from __future__ import annotations

import ast
import builtins
from typing import Any

from orz_rl.problems.problem import CodeTests, Problem

#: Keys every MBPP item has, in either release.
MBPP_KEYS = frozenset({"task_id", "code", "test_list"})

_PROMPT = (
    "You are an expert Python programmer, and here is your task: {text} "
    "Your code should pass these tests:\n\n{tests}"
)


def is_mbpp_item(item: Any) -> bool:
    """Whether ``item`` is an MBPP item (original or sanitized)."""
    return isinstance(item, dict) and MBPP_KEYS <= set(item) and ("text" in item or "prompt" in item)


def _entry_point(asserts: list[str], code: str) -> str:
    """The function the first assert calls that ``code`` defines (else the first it calls that is
    not a built-in)."""
    try:
        defined = {n.name for n in ast.walk(ast.parse(code)) if isinstance(n, ast.FunctionDef)}
    except SyntaxError:
        defined = set()
    called = [
        n.func.id
        for n in ast.walk(ast.parse(asserts[0]))
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    ]
    for name in called:
        if name in defined:
            return name
    for name in called:
        if not hasattr(builtins, name):
            return name
    raise ValueError(f"no function call in the first test {asserts[0]!r}")


def mbpp_problem(item: dict[str, Any]) -> Problem:
    """One MBPP item as a programming problem; its reference program is its ``code``."""
    asserts = [str(a) for a in item["test_list"]]
    if not asserts:
        raise ValueError("'test_list' is empty")
    setup = item.get("test_setup_code")
    if setup is None:
        setup = "\n".join(str(line) for line in item.get("test_imports", ()))
    for code in (*asserts, str(setup)):
        compile(code, "<mbpp test>", "exec")  # a SyntaxError names the item at load
    text = str(item.get("text", item.get("prompt", "")))
    tests = CodeTests(
        asserts=tuple(asserts), entry_point=_entry_point(asserts, str(item["code"])), setup=str(setup)
    )
    return Problem(question=_PROMPT.format(text=text, tests="\n".join(asserts)), answer="", tests=tests)
