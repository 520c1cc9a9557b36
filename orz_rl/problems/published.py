"""Benchmarks in the layouts they are published in, each recognised by its columns.

A researcher downloads MATH-500, AIME, GPQA, MMLU, MMLU-Pro or GSM8K from where it is published
and points ``orz-rl eval`` (or ``orz-rl data import``) at the file, in any format of
:mod:`orz_rl.problems.tables`. Each row is matched against :data:`LAYOUTS`, most specific first,
by its column names (case and surrounding spaces aside), and becomes a :class:`Problem`:

* multiple choice keeps its options as ``choices`` and the right option's *letter* as the truth,
  never an index; the options are listed under the question as ``(A) ...``;
* a row's subject, category, level or domain becomes a breakdown (``Problem.groups``).

``docs/benchmarks.md`` lists each layout with where it was confirmed. A row that matches none is
:class:`UnknownLayoutError`, naming its columns and the layouts known.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from orz_rl.problems.problem import Problem

Row = Mapping[str, Any]


class UnknownLayoutError(ValueError):
    """A row whose columns match no known layout."""


@dataclass(frozen=True)
class Layout:
    """One published layout: the columns that tell it, and how a row becomes a :class:`Problem`."""

    name: str
    """What ``docs/benchmarks.md`` and messages call it."""
    published_as: str
    """The benchmarks and releases published in it."""
    columns: tuple[str, ...]
    """The columns a row must have (lower case; ``a|b``: either)."""
    parse: Callable[[Row], Problem]
    """The problem of a row (its keys lower-cased); ``KeyError``/``ValueError`` on a bad value."""
    accepts: Callable[[Row], bool] | None = None
    """A further test where the columns alone do not tell two layouts apart (GSM8K's ``####``)."""
    multiple_choice: bool = False
    """Whether its truth is an option (an index or letter that only its options give a meaning)."""

    def matches(self, row: Row) -> bool:
        present = all(any(c in row for c in alternatives.split("|")) for alternatives in self.columns)
        return present and (self.accepts is None or self.accepts(row))


def _text(row: Row, column: str) -> str:
    value = row[column]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"column {column!r} must be non-empty text, got {value!r}")
    return value.strip()


_MATH_WRAPPER = re.compile(r"^\s*(?:\$+(.*?)\$+|\\\((.*?)\\\)|\\\[(.*?)\\\])\s*$", re.DOTALL)


def answer_text(value: Any, column: str = "answer") -> str:
    """A published answer as text: numbers as text, math delimiters removed (``$5$`` -> ``5``); a
    ``ValueError`` naming ``column`` for anything but a string or a number."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"column {column!r}: an answer of type {type(value).__name__} ({value!r})")
    text = str(value).strip()
    wrapped = _MATH_WRAPPER.match(text)
    return next(g for g in wrapped.groups() if g is not None).strip() if wrapped else text


def _truth(value: Any, column: str = "answer") -> str:
    text = answer_text(value, column)
    if not text:
        raise ValueError(f"column {column!r} is empty")
    return text


def _first(row: Row, *columns: str) -> str:
    return next(c for c in columns if c in row)


def letters(count: int) -> list[str]:
    """The option letters of ``count`` options: A, B, C, ..."""
    return [chr(ord("A") + i) for i in range(count)]


def choice_problem(question: str, options: list[str], answer: str, groups: tuple = ()) -> Problem:
    """A multiple-choice problem: the options listed under the question as ``(A) ...``, the truth
    the right option's letter."""
    if not options:
        raise ValueError("no options")
    marks = letters(len(options))
    if answer not in marks:
        raise ValueError(f"answer {answer!r} is not one of the option letters {''.join(marks)}")
    listed = "\n".join(f"({mark}) {option}" for mark, option in zip(marks, options, strict=True))
    choices = tuple(zip(marks, options, strict=True))
    return Problem(question=f"{question}\n{listed}", answer=answer, choices=choices, groups=groups)


def _options(value: Any, column: str) -> list[str]:
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"column {column!r} must be a non-empty list of options, got {value!r}")
    if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value):
        raise ValueError(f"column {column!r}: every option must be text")
    return [str(v).strip() for v in value]


def _group(name: str, value: Any) -> tuple[tuple[str, str], ...]:
    text = str(value).strip() if value is not None else ""
    return ((name, text),) if text else ()


def _math500(row: Row) -> Problem:
    level = str(row["level"]).strip()
    level = level.removeprefix("Level ").strip()  # MATH writes "Level 3"; MATH-500's JSON, 3
    return Problem(
        question=_text(row, "problem"),
        answer=_truth(row["answer"]),
        groups=_group("level", level) + _group("subject", row["subject"]),
    )


def _mmlu(row: Row) -> Problem:
    options = _options(row["choices"], "choices")
    index = row["answer"]
    if isinstance(index, str) and index.strip().isdigit():
        index = int(index)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(options):
        raise ValueError(f"column 'answer' must be an option index 0-{len(options) - 1}, got {index!r}")
    return choice_problem(
        _text(row, "question"), options, letters(len(options))[index], _group("subject", row["subject"])
    )


def _mmlu_csv(row: Row) -> Problem:
    options = [_text(row, mark) for mark in ("a", "b", "c", "d")]
    answer = _text(row, "answer").upper()
    return choice_problem(_text(row, "question"), options, answer, _group("subject", row.get("subject")))


def _mmlu_pro(row: Row) -> Problem:
    options = _options(row["options"], "options")
    answer = str(row["answer"]).strip().upper()
    index = row.get("answer_index")
    if index is not None and str(index).strip() != "" and letters(len(options) + 1)[int(index)] != answer:
        raise ValueError(f"'answer' {answer!r} and 'answer_index' {index!r} name different options")
    return choice_problem(_text(row, "question"), options, answer, _group("category", row.get("category")))


def _gpqa(row: Row) -> Problem:
    question = _text(row, "question")
    right = _text(row, "correct answer")
    options = [right] + [_text(row, f"incorrect answer {i}") for i in (1, 2, 3)]
    # One permutation per item, seeded by its question, so every run and every machine lists the
    # options alike (the common harnesses shuffle GPQA, whose file always has the right one first).
    random.Random(hashlib.sha256(question.encode()).digest()).shuffle(options)
    answer = letters(4)[options.index(right)]
    return choice_problem(question, options, answer, _group("domain", row.get("high-level domain")))


_GSM8K_FINAL = re.compile(r"####\s*(.+?)\s*$", re.DOTALL)


def _is_gsm8k(row: Row) -> bool:
    return isinstance(row["answer"], str) and "####" in row["answer"]


def _gsm8k(row: Row) -> Problem:
    final = _GSM8K_FINAL.search(_text(row, "answer"))
    if final is None:
        raise ValueError("column 'answer' has no final '#### N'")
    return Problem(question=_text(row, "question"), answer=_truth(final.group(1).replace(",", "")))


def _problem_answer(row: Row) -> Problem:
    return Problem(question=_text(row, _first(row, "problem", "question")), answer=_truth(row["answer"]))


#: Most specific first: a row takes the first layout whose columns it has.
LAYOUTS: tuple[Layout, ...] = (
    Layout(
        "math500",
        "MATH-500 (HuggingFaceH4/MATH-500), and MATH's own test split with these columns",
        ("problem", "solution", "answer", "subject", "level", "unique_id"),
        _math500,
    ),
    Layout(
        "mmlu",
        "MMLU as cais/mmlu publishes it (the answer an option index)",
        ("question", "subject", "choices", "answer"),
        _mmlu,
        multiple_choice=True,
    ),
    Layout(
        "mmlu-csv",
        "MMLU's original CSVs (Hendrycks et al.: no header, the answer a letter)",
        ("question", "a", "b", "c", "d", "answer"),
        _mmlu_csv,
        multiple_choice=True,
    ),
    Layout(
        "mmlu-pro",
        "MMLU-Pro (TIGER-Lab/MMLU-Pro: up to 10 options, the answer a letter), and orz-rl's "
        "own multiple choice",
        ("question", "options", "answer"),
        _mmlu_pro,
        multiple_choice=True,
    ),
    Layout(
        "gpqa",
        "GPQA (Idavidrein/gpqa: main, extended, diamond)",
        ("question", "correct answer", "incorrect answer 1", "incorrect answer 2", "incorrect answer 3"),
        _gpqa,
        multiple_choice=True,
    ),
    Layout(
        "gsm8k",
        "GSM8K (openai/gsm8k: the answer a worked solution ending '#### N')",
        ("question", "answer"),
        _gsm8k,
        accepts=_is_gsm8k,
    ),
    Layout(
        "problem-answer",
        "AIME 2024 and 2025 as distributed on the Hub, and any other problem/answer set",
        ("problem|question", "answer"),
        _problem_answer,
    ),
)


def lower_keys(row: Row) -> dict[str, Any]:
    """``row`` with its column names lower-cased and stripped (published files differ in case:
    ``Problem``/``Answer``, ``Correct Answer``)."""
    return {str(k).strip().lower(): v for k, v in row.items()}


def find_layout(row: Any) -> Layout | None:
    """The first of :data:`LAYOUTS` that ``row`` (a mapping) matches, or None."""
    if not isinstance(row, Mapping):
        return None
    lowered = lower_keys(row)
    return next((layout for layout in LAYOUTS if layout.matches(lowered)), None)


def known_layouts() -> str:
    """The layouts and their columns, for messages."""
    return "; ".join(f"{layout.name} ({', '.join(layout.columns)})" for layout in LAYOUTS)


def parse_published(row: Any) -> Problem:
    """The problem of one row in a published layout; :class:`UnknownLayoutError` naming its
    columns and the known layouts where it matches none."""
    layout = find_layout(row)
    if layout is None:
        columns = ", ".join(map(str, row)) if isinstance(row, Mapping) else f"a JSON {type(row).__name__}"
        raise UnknownLayoutError(f"its columns ({columns}) match no layout orz-rl knows: {known_layouts()}")
    return layout.parse(lower_keys(row))
