"""Prompt datasets: the ORZ file formats, orz-rl's own, and the published benchmarks' layouts.

Three formats of items (the first two are ORZ's, ``docs/orz_recipe.md``):

* training: a JSON list of two-message dialogues
  ``[{"from": "human", "value": Q}, {"from": "assistant", "ground_truth": {"value": A}}]``
* evaluation: a JSON list of ``{"prompt": [{"from": "user", "value": Q}], "final_answer": A}``
  (GPQA adds ``"choices"``);
* multiple choice (MMLU, MMLU-Pro): ``{"question": Q, "options": [...], "answer": "B"}``; the
  options are listed under the question as ``(A) ...``.

Programming problems (:func:`load_code_problems`) are one object per line:
``{"question": Q, "stdio": [{"input": I, "output": O}, ...], "compare": "exact"}`` or
``{"question": Q, "entry_point": F, "asserts": ["assert F(1) == 2", ...], "setup": "", "prelude": ""}``.

Besides these, a row of a benchmark in the layout it is published in (MATH-500, AIME, GPQA, MMLU,
MMLU-Pro, GSM8K: :mod:`orz_rl.problems.published`) is a math or multiple-choice problem, and
HumanEval's, MBPP's and LiveCodeBench's are programming problems. Any of them may be in a file
of any format of :mod:`orz_rl.problems.tables` (JSON, JSON Lines, gzipped, Parquet, CSV).
A malformed item raises :class:`DatasetFormatError` naming the file and the line or row; one in
none of these formats, :class:`UnknownFormatError`.
:func:`load_items` is the loop every format shares; a task of one's own reads its files with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from orz_rl.problems.humaneval import humaneval_problem, is_humaneval_item
from orz_rl.problems.livecodebench import is_lcb_item, lcb_problem
from orz_rl.problems.mbpp import is_mbpp_item, mbpp_problem
from orz_rl.problems.problem import CodeTests, Problem
from orz_rl.problems.published import UnknownLayoutError, known_layouts, parse_published
from orz_rl.problems.tables import DatasetFormatError, iter_json_items, iter_rows

__all__ = [
    "DatasetFormatError",
    "UnknownFormatError",
    "iter_json_items",
    "load_any_problems",
    "load_code_problems",
    "load_items",
    "load_problems",
    "is_code_item",
    "parse_math_item",
]


class UnknownFormatError(DatasetFormatError):
    """An item in none of the formats a built-in loader reads, as in a file of a task of one's own:
    the command line adds how to name that task (``--task``)."""


def _train_item(item: Any) -> Problem:
    human, assistant = item
    # A multiple-choice item imported by `orz-rl data import` keeps its options on the human turn.
    raw = human.get("choices") or {}
    choices = tuple((str(k), str(v)) for k, v in raw.items()) if isinstance(raw, dict) else ()
    return Problem(
        question=str(human["value"]), answer=str(assistant["ground_truth"]["value"]), choices=choices
    )


def _eval_item(item: Any) -> Problem:
    question = item["prompt"][0]["value"]
    raw = item.get("choices") or {}
    if isinstance(raw, dict):
        choices = tuple((str(k), str(v)) for k, v in raw.items())
    else:  # a plain list of options is lettered A, B, C, ...
        choices = tuple((chr(ord("A") + i), str(v)) for i, v in enumerate(raw))
    return Problem(question=str(question), answer=str(item["final_answer"]), choices=choices)


def parse_math_item(item: Any) -> Problem:
    """One math item in any of the formats above, told apart by its shape, or a row of a
    published benchmark (:mod:`orz_rl.problems.published`, which reads the multiple-choice
    format as MMLU-Pro's)."""
    if isinstance(item, list):
        return _train_item(item)
    if isinstance(item, dict) and "prompt" in item:
        return _eval_item(item)
    return parse_published(item)


def load_items(path: str | Path, parse: Callable[[Any], Any], what: str, expected: str) -> list[Any]:
    """Every item (row) of the data file ``path`` (any format of :mod:`orz_rl.problems.tables`)
    through ``parse``; the first malformed one (``parse`` raised ``KeyError``, ``IndexError``,
    ``TypeError``, ``ValueError`` or ``SyntaxError``, or the question is empty) is a
    :class:`DatasetFormatError` at its line or row, and one in no known layout
    (:class:`UnknownFormatError`) names its columns and ``expected``.

    ``what`` names an item in that message and ``expected`` shows its format. Dataclass items
    with a ``source`` field get ``"PATH: item N"`` there.
    """
    path = Path(path)
    problems = []
    for number, (where, item) in enumerate(iter_rows(path), start=1):
        try:
            problem = parse(item)
            if not str(problem.question).strip():
                raise ValueError("empty question")
        except UnknownLayoutError:
            columns = (
                ", ".join(map(str, item)) if isinstance(item, Mapping) else f"a JSON {type(item).__name__}"
            )
            raise UnknownFormatError(
                f"{where}: not in a built-in format (its columns: {columns}); built in: {expected} "
                "(docs/benchmarks.md)"
            ) from None
        except (KeyError, IndexError, TypeError, ValueError, SyntaxError) as e:
            raise DatasetFormatError(
                f"{where}: malformed {what} ({type(e).__name__}: {e}); expected {expected}"
            ) from None
        if is_dataclass(problem) and "source" in {f.name for f in fields(problem)}:
            problem = replace(problem, source=f"{path}: item {number}")
        problems.append(problem)
    if not problems:
        raise DatasetFormatError(f"{path}: no items")
    return problems


def load_problems(path: str | Path) -> list[Problem]:
    """Load an ORZ training or evaluation file, a multiple-choice file, or a published math or
    multiple-choice benchmark (the format is per item)."""
    return load_items(
        path,
        parse_math_item,
        "item",
        '[{"from": "human", "value": Q}, {"from": "assistant", "ground_truth": {"value": A}}], '
        '{"prompt": [{"from": "user", "value": Q}], "final_answer": A}, '
        '{"question": Q, "options": [...], "answer": LETTER} or a published layout: ' + known_layouts(),
    )


_CODE_KEYS = {
    "question",
    "stdio",
    "asserts",
    "entry_point",
    "setup",
    "prelude",
    "compare",
    "tolerance",
    "solution",
}


def _code_item(item: Any) -> Problem:
    if is_humaneval_item(item):
        return humaneval_problem(item)
    if is_lcb_item(item):
        return lcb_problem(item)
    if is_mbpp_item(item):
        return mbpp_problem(item)
    if not isinstance(item, dict):
        raise TypeError("a programming problem is a JSON object")
    unknown = set(item) - _CODE_KEYS
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)} (known: {sorted(_CODE_KEYS)})")
    stdio = tuple((str(case["input"]), str(case["output"])) for case in item.get("stdio", ()))
    asserts = tuple(str(a) for a in item.get("asserts", ()))
    if bool(stdio) == bool(asserts):
        raise ValueError("give exactly one of 'stdio' (input/output pairs) or 'asserts'")
    entry_point = str(item.get("entry_point", ""))
    if asserts and not entry_point.isidentifier():
        raise ValueError(f"'asserts' need the tested function's name as 'entry_point', got {entry_point!r}")
    for code in (*asserts, str(item.get("setup", "")), str(item.get("prelude", ""))):
        compile(code, "<test>", "exec")  # a SyntaxError names the line here, not at scoring time
    compare = item.get("compare", "exact")
    if compare not in ("exact", "whitespace", "float"):
        raise ValueError(f"'compare' must be exact, whitespace or float, got {compare!r}")
    tests = CodeTests(
        stdio=stdio,
        asserts=asserts,
        entry_point=entry_point,
        setup=str(item.get("setup", "")),
        prelude=str(item.get("prelude", "")),
        compare=compare,
        tolerance=float(item.get("tolerance", 1e-6)),
    )
    return Problem(question=str(item["question"]), answer="", tests=tests)


def load_code_problems(path: str | Path) -> list[Problem]:
    """Load programming problems (JSON Lines, or a JSON list), each with its unit tests: orz-rl's
    format, or HumanEval's as published (:mod:`orz_rl.problems.humaneval`), per item."""
    return load_items(
        path,
        _code_item,
        "programming problem",
        '{"question": Q, "stdio": [{"input": I, "output": O}, ...]}, '
        '{"question": Q, "entry_point": F, "asserts": ["assert F(..) == ..", ...]}, HumanEval\'s '
        '{"task_id", "prompt", "entry_point", "canonical_solution", "test"}, MBPP\'s '
        '{"task_id", "text", "code", "test_list", "test_setup_code", ...} or LiveCodeBench\'s '
        '{"question_content", "starter_code", "public_test_cases", "private_test_cases", "metadata", ...}',
    )


def is_code_item(item: Any) -> bool:
    """Whether an item is a programming problem (orz-rl's, HumanEval's, MBPP's or LiveCodeBench's format)."""
    return isinstance(item, dict) and (
        "stdio" in item
        or "asserts" in item
        or is_humaneval_item(item)
        or is_lcb_item(item)
        or is_mbpp_item(item)
    )


def load_any_problems(path: str | Path) -> list[Problem]:
    """Load a file of math, multiple-choice or programming problems, or of several kinds: each
    item in whichever format it is (:func:`load_problems`, :func:`load_code_problems`)."""
    return load_items(
        path,
        lambda item: _code_item(item) if is_code_item(item) else parse_math_item(item),
        "item",
        "ORZ's training, evaluation or multiple-choice items; programming problems in orz-rl's, "
        "HumanEval's, MBPP's or LiveCodeBench's format; or a published layout: " + known_layouts(),
    )
