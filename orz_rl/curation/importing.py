"""``orz-rl data import``: problems from the files people have, into ORZ's training format.

Files are read by :mod:`orz_rl.problems.tables` (Parquet through Hugging Face ``datasets``; JSON,
JSON Lines and CSV by readers that keep each value as the file writes it), Hub names (where the
machine reaches the Hub) through ``datasets``; all stream, so a collection of any size passes in
constant memory.
Which fields hold the question and the answer is a preset or named on the command line; a field
may be a dotted path (``meta.answer``, ``prompt.0.value``). Presets:

* ``auto`` (the default): each row in the layout it is published in, recognised by its columns
  (:mod:`orz_rl.problems.published`: MATH-500, AIME, GPQA, MMLU, MMLU-Pro, GSM8K). A
  multiple-choice row becomes its question with the options listed under it and the right
  option's *letter* as the answer, never an index, with the options kept as the item's
  ``choices``; GSM8K's answer is its final ``#### N``. A first row in no known layout is one
  error naming its columns; rows in the problem/answer layout go as ``problem-answer`` below;

* ``problem-answer``: ``{"problem": Q, "answer": A}`` (MATH-500, AIME, many others);
* ``question-final_answer``: ``{"question": Q, "final_answer": A}`` (OlympiadBench; a list of
  one answer is that answer, of several is kept as ``"A1; A2"`` with ``answer_parts``);
* ``solution-boxed``: ``{"problem": Q, "solution": S}``, the answer the last ``\\boxed{}`` of S
  (MATH's worked solutions);
* ``orz``: ORZ's own files: training dialogues, evaluation items, multiple choice
  (:mod:`orz_rl.problems.formats`), read by orz-rl's loader rather than ``datasets``, whose
  tables cannot hold a list of two dialogue turns.

Every item keeps its ``source`` (``FILE#ROW``, rows from 0); a row without a question or an
answer is dropped with its reason, never a crash.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import tyro

from orz_rl.curation.items import Item, ItemWriter, Report, default_report, parse_dialogue
from orz_rl.problems.formats import parse_math_item
from orz_rl.problems.published import Layout, find_layout, known_layouts, lower_keys
from orz_rl.problems.published import answer_text as published_answer_text
from orz_rl.problems.tables import SUFFIXES, DatasetFormatError, is_table, iter_json_items, iter_rows
from orz_rl.rewards.math_answers import last_boxed
from orz_rl.runtime.atomic_write import refuse_overwrite

Preset = Literal["auto", "problem-answer", "question-final_answer", "solution-boxed", "orz"]

#: ``(question field, answer field, solution field)`` of each preset but ``orz``.
PRESETS: dict[str, tuple[str, str, str]] = {
    "problem-answer": ("problem", "answer", ""),
    "question-final_answer": ("question", "final_answer", ""),
    "solution-boxed": ("problem", "", "solution"),
}


@dataclass(frozen=True)
class ImportConfig:
    """``orz-rl data import``: files (or Hub names) in, one ORZ training file out."""

    inputs: tyro.conf.Positional[tuple[str, ...]]
    """Data files (Parquet, CSV, JSON, JSON Lines, gzipped JSON Lines), or Hugging Face Hub dataset
    names (``owner/name``)."""
    out: Path
    """The training file to write (``.jsonl``, or ``.json`` for a JSON list)."""
    preset: Preset = "auto"
    """The field layout (the module's docstring lists them); the fields below override it."""
    question_field: str = ""
    """The field holding the question (dotted for nested fields); empty: the preset's."""
    answer_field: str = ""
    """The field holding the answer; empty: the preset's."""
    solution_field: str = ""
    """A worked solution whose last ``\\boxed{}`` is the answer, used where there is no answer
    field; empty: the preset's."""
    split: str = "train"
    """The split of a Hub dataset."""
    report: Path | None = None
    """Where the JSON report goes (default: beside ``out``, ``NAME.report.json``)."""


def field_value(row: Any, path: str) -> Any:
    """``row``'s value at the dotted ``path`` (``prompt.0.value``); ``None`` where it is absent."""
    value = row
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list | tuple) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def answer_text(value: Any) -> tuple[str, int]:
    """``(answer, parts)`` of a source's answer: numbers as text, math delimiters removed
    (``$5$`` -> ``5``), a list of several answers joined by ``"; "``."""
    values = list(value) if isinstance(value, list | tuple) else [value]
    texts = [published_answer_text(v) for v in values]
    return "; ".join(texts), len(texts)


def _rows(spec: str, split: str) -> Iterator[tuple[str, Any]]:
    """``(source, row)`` of every row of a file or a Hub dataset."""
    path = Path(spec)
    if is_table(path):
        for index, (_, row) in enumerate(iter_rows(path)):
            yield f"{path}#{index}", row
        return
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", spec) or path.exists():
        raise ValueError(
            f"input {spec!r}: neither a data file ({', '.join(SUFFIXES)}) nor a Hub name (owner/name)"
        )
    import datasets

    prefix = f"hub:{spec}/{split}"
    try:
        for index, row in enumerate(datasets.load_dataset(spec, split=split, streaming=True)):
            yield f"{prefix}#{index}", row
    except Exception as e:  # no network, no such dataset: one line naming it
        raise DatasetFormatError(f"{prefix}: could not be read ({type(e).__name__}: {e})") from None


def _published_item(layout: Layout, row: Any, item: Item, report: Report) -> Item | None:
    """The item of a row in a published layout (multiple choice: its options listed, the letter as
    the answer, the options as ``choices``), or None with the row dropped and its reason."""
    try:
        problem = layout.parse(lower_keys(row))
    except (KeyError, IndexError, TypeError, ValueError) as e:
        report.drop(item, "malformed", layout=layout.name, detail=str(e))
        return None
    item.question, item.answer = problem.question, problem.answer
    if problem.choices:
        item.meta["choices"] = dict(problem.choices)
    return item


def _resolve_fields(cfg: ImportConfig) -> tuple[str, str, str]:
    """``(question, answer, solution)`` fields: the preset's, each overridden where one is named."""
    question_field, answer_field, solution_field = PRESETS[
        "problem-answer" if cfg.preset == "auto" else cfg.preset
    ]
    question_field = cfg.question_field or question_field
    answer_field = cfg.answer_field or answer_field
    solution_field = cfg.solution_field or solution_field
    if not answer_field and not solution_field:
        raise ValueError("--answer-field or --solution-field: one must name where the answer is")
    return question_field, answer_field, solution_field


def _unknown_layout_error(source: str, row: Any) -> DatasetFormatError:
    """The error for a first row whose columns match no known layout, naming them."""
    columns = ", ".join(map(str, row)) if isinstance(row, dict) else f"a JSON {type(row).__name__}"
    return DatasetFormatError(
        f"{source}: its columns ({columns}) match no layout orz-rl knows: {known_layouts()}; "
        "name the fields (--question-field, --answer-field), or --preset orz for ORZ's files"
    )


def _question_field(row: Any, question_field: str, auto: bool) -> str:
    """The field holding ``row``'s question: ``question_field``, or ``question`` in AIME 2025's layout."""
    if auto and isinstance(row, dict) and "problem" not in row and "question" in row:
        return "question"  # AIME 2025 as some publish it
    return question_field


def _row_answer(
    row: Any, item: Item, report: Report, answer_field: str, solution_field: str
) -> tuple[str, int] | None:
    """``(answer, parts)`` of ``row`` by its answer or solution field, or None with the row dropped."""
    value = field_value(row, answer_field) if answer_field else None
    if value is None and solution_field:
        solution = field_value(row, solution_field)
        value = last_boxed(solution) if isinstance(solution, str) else None
        if value is None:
            report.drop(item, "no_boxed_answer", field=solution_field)
            return None
    try:
        answer, parts = answer_text(value) if value is not None else ("", 0)
    except ValueError as e:
        report.drop(item, "answer_not_text", field=answer_field, detail=str(e))
        return None
    if not answer:
        report.drop(item, "no_answer", field=answer_field or solution_field)
        return None
    return answer, parts


def _field_item(
    row: Any, item: Item, report: Report, fields: tuple[str, str, str], auto: bool
) -> Item | None:
    """The item of a row by its ``(question, answer, solution)`` fields, or None with the row dropped."""
    question_field, answer_field, solution_field = fields
    asked = _question_field(row, question_field, auto)
    question = field_value(row, asked)
    if not isinstance(question, str) or not question.strip():
        report.drop(item, "no_question", field=asked)
        return None
    item.question = question.strip()
    if (answered := _row_answer(row, item, report, answer_field, solution_field)) is None:
        return None
    item.answer, parts = answered
    if parts > 1:
        item.meta["answer_parts"] = parts
    return item


def import_rows(cfg: ImportConfig, report: Report) -> Iterator[Item]:
    """The items of every input, in order; rows without a question or an answer are dropped
    into ``report`` with their reason."""
    if cfg.preset == "orz":
        for spec in cfg.inputs:
            yield from _orz_items(Path(spec), report)
        return
    fields_given = bool(cfg.question_field or cfg.answer_field or cfg.solution_field)
    auto = cfg.preset == "auto" and not fields_given
    fields = _resolve_fields(cfg)
    for spec in cfg.inputs:
        for index, (source, row) in enumerate(_rows(spec, cfg.split)):
            report.read += 1
            item = Item(question="", answer="", source=source)
            layout = find_layout(row)
            if auto and layout is None and index == 0:
                raise _unknown_layout_error(source, row)
            # A multiple-choice row goes by its layout whatever the preset: its answer field holds
            # an index or a letter that means nothing without the options.
            if layout is not None and (layout.multiple_choice or auto and layout.name != "problem-answer"):
                kept = _published_item(layout, row, item, report)
            else:
                kept = _field_item(row, item, report, fields, auto)
            if kept is not None:
                yield kept


def _orz_items(path: Path, report: Report) -> Iterator[Item]:
    for lineno, obj in iter_json_items(path):
        report.read += 1
        where = f"{path}:{lineno}"
        try:
            if isinstance(obj, list):
                yield parse_dialogue(obj, where)
                continue
            problem = parse_math_item(obj)
        except (DatasetFormatError, KeyError, IndexError, TypeError, ValueError) as e:
            report.drop(Item("", "", where), "malformed", detail=str(e))
            continue
        yield Item(problem.question, problem.answer, where)


def run(cfg: ImportConfig) -> Report:
    """``orz-rl data import``: write ``cfg.out`` and its report."""
    if not cfg.inputs:
        raise ValueError("orz-rl data import: name at least one input file")
    refuse_overwrite(cfg.inputs, out=cfg.out, report=cfg.report or default_report(cfg.out))
    report = Report("import", list(cfg.inputs), str(cfg.out))
    with ItemWriter(cfg.out) as writer:
        for item in import_rows(cfg, report):
            writer.write(item)
            report.kept += 1
    report.sections["preset"] = cfg.preset
    report.finish(cfg.report)
    return report
