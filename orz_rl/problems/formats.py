"""Prompt datasets in the ORZ file formats.

Three formats (the first two are ORZ's, ``docs/orz_recipe.md``):

* training: a JSON list of two-message dialogues
  ``[{"from": "human", "value": Q}, {"from": "assistant", "ground_truth": {"value": A}}]``
* evaluation: a JSON list of ``{"prompt": [{"from": "user", "value": Q}], "final_answer": A}``
  (GPQA adds ``"choices"``);
* multiple choice (MMLU, MMLU-Pro): ``{"question": Q, "options": [...], "answer": "B"}``; the
  options are listed under the question as ``(A) ...``.

Programming problems (:func:`load_code_problems`) are one object per line:
``{"question": Q, "stdio": [{"input": I, "output": O}, ...], "compare": "exact"}`` or
``{"question": Q, "entry_point": F, "asserts": ["assert F(1) == 2", ...], "setup": "", "prelude": ""}``.

Each may also be written as JSON Lines (a ``.jsonl`` file), one item per line.
A malformed item raises :class:`DatasetFormatError` naming the file and the line.
:func:`load_items` is the loop every format shares; a task of one's own reads its files with it.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from orz_rl.problems.humaneval import humaneval_problem, is_humaneval_item
from orz_rl.problems.livecodebench import is_lcb_item, lcb_problem
from orz_rl.problems.mbpp import is_mbpp_item, mbpp_problem
from orz_rl.problems.problem import CodeTests, Problem


class DatasetFormatError(ValueError):
    """A dataset file that does not follow the ORZ format; the message names file and line."""


def _item_lines(text: str) -> list[int]:
    """1-based line on which each top-level item of a JSON list starts."""
    decoder = json.JSONDecoder()
    lines, pos = [], text.index("[") + 1
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            return lines
        lines.append(text.count("\n", 0, pos) + 1)
        _, pos = decoder.raw_decode(text, pos)


def iter_json_items(path: str | Path) -> Iterator[tuple[int, Any]]:
    """``(line, item)`` pairs of a JSON list, or of a JSON Lines file (``.jsonl``, or gzipped
    ``.jsonl.gz`` as HumanEval ships); a plain ``.jsonl`` file is read a line at a time, so a
    collection of any size streams. Invalid JSON is a :class:`DatasetFormatError` at its line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file {str(path)!r} does not exist")
    if path.name.endswith(".jsonl"):
        with path.open(encoding="utf-8") as lines:
            try:
                yield from _json_lines(path, enumerate(lines, start=1))
            except UnicodeDecodeError as e:
                raise DatasetFormatError(f"{path}: not a UTF-8 text file ({e})") from None
        return
    if path.name.endswith(".jsonl.gz"):
        try:
            text = gzip.decompress(path.read_bytes()).decode("utf-8")
        except (OSError, EOFError, UnicodeDecodeError) as e:
            raise DatasetFormatError(f"{path}: not a gzipped UTF-8 JSON Lines file ({e})") from None
        yield from _json_lines(path, enumerate(text.splitlines(), start=1))
        return
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DatasetFormatError(f"{path}: not a UTF-8 text file ({e})") from None
    items = _loads(text, path)
    if not isinstance(items, list):
        raise DatasetFormatError(f"{path}:1: expected a JSON list of items (or a .jsonl file)")
    yield from zip(_item_lines(text), items, strict=True)


def _json_lines(path: Path, lines: Iterable[tuple[int, str]]) -> Iterator[tuple[int, Any]]:
    for lineno, line in lines:
        if line.strip():
            yield lineno, _loads(line, path, lineno)


def _loads(text: str, path: Path, lineno: int = 0) -> Any:
    """``text`` parsed; invalid or too deeply nested JSON is a :class:`DatasetFormatError` at
    ``lineno`` of ``path`` (0: where the parser stopped, or the file)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DatasetFormatError(f"{path}:{lineno or e.lineno}: invalid JSON: {e.msg}") from None
    except RecursionError:
        where = f"{path}:{lineno}" if lineno else str(path)
        raise DatasetFormatError(f"{where}: JSON nested too deeply to read") from None


def _train_item(item: Any) -> Problem:
    human, assistant = item
    return Problem(question=str(human["value"]), answer=str(assistant["ground_truth"]["value"]))


def _eval_item(item: Any) -> Problem:
    question = item["prompt"][0]["value"]
    raw = item.get("choices") or {}
    if isinstance(raw, dict):
        choices = tuple((str(k), str(v)) for k, v in raw.items())
    else:  # a plain list of options is lettered A, B, C, ...
        choices = tuple((chr(ord("A") + i), str(v)) for i, v in enumerate(raw))
    return Problem(question=str(question), answer=str(item["final_answer"]), choices=choices)


def _choice_item(item: Any) -> Problem:
    """MMLU / MMLU-Pro style: the options are listed under the question, the truth is a letter."""
    options = item["options"]
    if not isinstance(options, list) or not options:
        raise ValueError("'options' must be a non-empty list")
    letters = [chr(ord("A") + i) for i in range(len(options))]
    answer = str(item["answer"]).strip().upper()
    if answer not in letters:
        raise ValueError(f"answer {item['answer']!r} is not one of the option letters {''.join(letters)}")
    listed = "\n".join(f"({letter}) {option}" for letter, option in zip(letters, options, strict=True))
    question = f"{item['question']}\n{listed}"
    choices = tuple(zip(letters, map(str, options), strict=True))
    return Problem(question=question, answer=answer, choices=choices)


def parse_math_item(item: Any) -> Problem:
    """One math item in any of the three formats above, told apart by its shape."""
    if isinstance(item, list):
        return _train_item(item)
    if isinstance(item, dict) and "prompt" in item:
        return _eval_item(item)
    if isinstance(item, dict) and "options" in item:
        return _choice_item(item)
    raise TypeError("neither a training dialogue nor an evaluation or multiple-choice item")


def load_items(path: str | Path, parse: Callable[[Any], Any], what: str, expected: str) -> list[Any]:
    """Every item of the JSON list or JSON Lines file ``path`` through ``parse``; the first
    malformed one (``parse`` raised ``KeyError``, ``IndexError``, ``TypeError``, ``ValueError`` or
    ``SyntaxError``, or the question is empty) is a :class:`DatasetFormatError` at its line.

    ``what`` names an item in that message and ``expected`` shows its format. Dataclass items
    with a ``source`` field get ``"PATH: item N"`` there.
    """
    path = Path(path)
    problems = []
    for number, (lineno, item) in enumerate(iter_json_items(path), start=1):
        try:
            problem = parse(item)
            if not str(problem.question).strip():
                raise ValueError("empty question")
        except (KeyError, IndexError, TypeError, ValueError, SyntaxError) as e:
            raise DatasetFormatError(
                f"{path}:{lineno}: malformed {what} ({type(e).__name__}: {e}); expected {expected}"
            ) from None
        if is_dataclass(problem) and "source" in {f.name for f in fields(problem)}:
            problem = replace(problem, source=f"{path}: item {number}")
        problems.append(problem)
    if not problems:
        raise DatasetFormatError(f"{path}: no items")
    return problems


def load_problems(path: str | Path) -> list[Problem]:
    """Load an ORZ training or evaluation file, or a multiple-choice JSONL (the format is per item)."""
    return load_items(
        path,
        parse_math_item,
        "item",
        '[{"from": "human", "value": Q}, {"from": "assistant", "ground_truth": {"value": A}}], '
        '{"prompt": [{"from": "user", "value": Q}], "final_answer": A} or '
        '{"question": Q, "options": [...], "answer": LETTER}',
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
        "one of the formats of orz_rl.problems.formats (ORZ's training, evaluation or multiple-choice "
        "items; programming problems in orz-rl's, HumanEval's, MBPP's or LiveCodeBench's format)",
    )
