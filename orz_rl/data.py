"""Prompt datasets in the ORZ file formats, and a resumable prompt sampler.

Three formats (the first two are ORZ's, ``shared/ORZ_RECIPE.md``):

* training: a JSON list of two-message dialogues
  ``[{"from": "human", "value": Q}, {"from": "assistant", "ground_truth": {"value": A}}]``
* evaluation: a JSON list of ``{"prompt": [{"from": "user", "value": Q}], "final_answer": A}``
  (GPQA adds ``"choices"``);
* multiple choice (MMLU, MMLU-Pro): ``{"question": Q, "options": [...], "answer": "B"}``; the
  options are listed under the question as ``(A) ...``.

Programming problems (:func:`load_code_problems`) are one object per line:
``{"question": Q, "stdio": [{"input": I, "output": O}, ...], "compare": "exact"}`` or
``{"question": Q, "entry_point": F, "asserts": ["assert F(1) == 2", ...], "setup": ""}``.

Each may also be written as JSON Lines (a ``.jsonl`` file), one item per line.
A malformed item raises :class:`DatasetFormatError` naming the file and the line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from orz_rl.code_judge import CodeTests


class DatasetFormatError(ValueError):
    """A dataset file that does not follow the ORZ format; the message names file and line."""


@dataclass(frozen=True)
class Problem:
    """One prompt of a rule-rewarded task."""

    question: str
    answer: str
    choices: tuple[tuple[str, str], ...] = field(default=())
    """Multiple-choice options as ``(letter, text)`` pairs (GPQA); empty otherwise."""
    tests: CodeTests | None = None
    """The unit tests of a programming problem (``envs/code.py``); ``None`` for math."""


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


def _read_items(path: Path) -> list[tuple[int, Any]]:
    """``(line, item)`` pairs of a JSON list, or of a JSON Lines file (``.jsonl``)."""
    if not path.is_file():
        raise FileNotFoundError(f"dataset file {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".jsonl":
        try:
            items = json.loads(text)
        except json.JSONDecodeError as e:
            raise DatasetFormatError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
        if not isinstance(items, list):
            raise DatasetFormatError(f"{path}:1: expected a JSON list of items (or a .jsonl file)")
        return list(zip(_item_lines(text), items, strict=True))
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append((lineno, json.loads(line)))
        except json.JSONDecodeError as e:
            raise DatasetFormatError(f"{path}:{lineno}: invalid JSON: {e.msg}") from None
    return out


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


def _parse_item(item: Any) -> Problem:
    if isinstance(item, list):
        return _train_item(item)
    if isinstance(item, dict) and "prompt" in item:
        return _eval_item(item)
    if isinstance(item, dict) and "options" in item:
        return _choice_item(item)
    raise TypeError("neither a training dialogue nor an evaluation or multiple-choice item")


def _load(path: str | Path, parse, what: str, expected: str) -> list[Problem]:
    """Every item of ``path`` through ``parse``; the first malformed one is an error at its line."""
    path = Path(path)
    problems = []
    for lineno, item in _read_items(path):
        try:
            problem = parse(item)
            if not problem.question.strip():
                raise ValueError("empty question")
        except (KeyError, IndexError, TypeError, ValueError, SyntaxError) as e:
            raise DatasetFormatError(
                f"{path}:{lineno}: malformed {what} ({type(e).__name__}: {e}); expected {expected}"
            ) from None
        problems.append(problem)
    if not problems:
        raise DatasetFormatError(f"{path}: no items")
    return problems


def load_problems(path: str | Path) -> list[Problem]:
    """Load an ORZ training or evaluation file, or a multiple-choice JSONL (the format is per item)."""
    return _load(
        path,
        _parse_item,
        "item",
        '[{"from": "human", "value": Q}, {"from": "assistant", "ground_truth": {"value": A}}], '
        '{"prompt": [{"from": "user", "value": Q}], "final_answer": A} or '
        '{"question": Q, "options": [...], "answer": LETTER}',
    )


_CODE_KEYS = {"question", "stdio", "asserts", "entry_point", "setup", "compare", "tolerance", "solution"}


def _code_item(item: Any) -> Problem:
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
    for code in (*asserts, str(item.get("setup", ""))):
        compile(code, "<test>", "exec")  # a SyntaxError names the line here, not at scoring time
    compare = item.get("compare", "exact")
    if compare not in ("exact", "whitespace", "float"):
        raise ValueError(f"'compare' must be exact, whitespace or float, got {compare!r}")
    tests = CodeTests(
        stdio=stdio,
        asserts=asserts,
        entry_point=entry_point,
        setup=str(item.get("setup", "")),
        compare=compare,
        tolerance=float(item.get("tolerance", 1e-6)),
    )
    return Problem(question=str(item["question"]), answer="", tests=tests)


def load_code_problems(path: str | Path) -> list[Problem]:
    """Load programming problems (JSON Lines, or a JSON list), each with its unit tests."""
    return _load(
        path,
        _code_item,
        "programming problem",
        '{"question": Q, "stdio": [{"input": I, "output": O}, ...]} or '
        '{"question": Q, "entry_point": F, "asserts": ["assert F(..) == ..", ...]}',
    )


class PromptSampler:
    """Shuffled passes over a dataset, resumable from :meth:`state_dict`.

    Each pass (an ORZ "episode") is a fresh permutation drawn from ``seed`` and
    the pass index, so a run restored at any position consumes exactly the
    prompts an uninterrupted run would have.
    """

    def __init__(self, problems: list[Problem], seed: int = 0) -> None:
        self.problems = problems
        self.seed = seed
        self.epoch = 0
        self.position = 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.problems), generator=g).tolist()

    def next_batch(self, n: int) -> list[tuple[int, Problem]]:
        """The next ``n`` ``(index, problem)`` pairs, crossing pass boundaries."""
        out = []
        while len(out) < n:
            if self.position == len(self._order):
                self.epoch += 1
                self.position = 0
                self._order = self._permutation(self.epoch)
            idx = self._order[self.position]
            self.position += 1
            out.append((idx, self.problems[idx]))
        return out

    def seek(self, drawn: int) -> None:
        """Continue as if ``drawn`` prompts had been drawn since the start (the order is a function
        of the seed alone, so a count is a position)."""
        self.epoch, self.position = divmod(drawn, len(self.problems))
        self._order = self._permutation(self.epoch)

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed, self.epoch, self.position = state["seed"], state["epoch"], state["position"]
        self._order = self._permutation(self.epoch)
