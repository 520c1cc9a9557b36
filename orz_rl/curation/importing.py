"""``orz-rl data import``: problems from the files people have, into ORZ's training format.

Parquet files and Hub names (where the machine reaches the Hub) are read through Hugging Face
``datasets``, JSON and JSON Lines by orz-rl's reader (``datasets`` turns a column that mixes numbers
and strings into JSON text); both stream, so a collection of any size passes in constant memory.
Which fields hold the question and the answer is a preset or named on the command line; a field
may be a dotted path (``meta.answer``, ``prompt.0.value``). Presets:

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

from orz_rl.curation.items import Item, ItemWriter, Report, parse_dialogue
from orz_rl.problems.formats import DatasetFormatError, iter_json_items, parse_math_item
from orz_rl.rewards.math_answers import last_boxed

Preset = Literal["problem-answer", "question-final_answer", "solution-boxed", "orz"]

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
    """JSON, JSON Lines or Parquet files, or Hugging Face Hub dataset names (``owner/name``)."""
    out: Path
    """The training file to write (``.jsonl``, or ``.json`` for a JSON list)."""
    preset: Preset = "problem-answer"
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


_MATH_WRAPPER = re.compile(r"^\s*(?:\$+(.*?)\$+|\\\((.*?)\\\)|\\\[(.*?)\\\])\s*$", re.DOTALL)


def answer_text(value: Any) -> tuple[str, int]:
    """``(answer, parts)`` of a source's answer: numbers as text, math delimiters removed
    (``$5$`` -> ``5``), a list of several answers joined by ``"; "``."""
    values = list(value) if isinstance(value, list | tuple) else [value]
    texts = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise ValueError(f"an answer of type {type(v).__name__}")
        text = str(v).strip()
        wrapped = _MATH_WRAPPER.match(text)
        if wrapped:
            text = next(g for g in wrapped.groups() if g is not None).strip()
        texts.append(text)
    return "; ".join(texts), len(texts)


def _rows(spec: str, split: str) -> Iterator[tuple[str, Any]]:
    """``(source, row)`` of every row of a file or a Hub dataset."""
    path = Path(spec)
    if path.suffix in (".json", ".jsonl"):
        # orz-rl's own reader, not datasets': datasets turns a column whose rows mix numbers and
        # strings (answers often do) into JSON text, so "$x$" would arrive as '"$x$"'.
        for index, (_, row) in enumerate(iter_json_items(path)):
            yield f"{path}#{index}", row
        return
    import datasets

    if path.suffix == ".parquet":
        if not path.is_file():
            raise FileNotFoundError(f"input file {spec!r} does not exist")
        prefix, name, options = str(path), "parquet", {"data_files": str(path), "split": "train"}
    elif re.fullmatch(r"[\w.-]+/[\w.-]+", spec) and not path.exists():
        prefix, name, options = f"hub:{spec}/{split}", spec, {"split": split}
    else:
        raise ValueError(
            f"input {spec!r}: neither a .json, .jsonl or .parquet file nor a Hub name (owner/name)"
        )
    try:
        for index, row in enumerate(datasets.load_dataset(name, streaming=True, **options)):
            yield f"{prefix}#{index}", row
    except Exception as e:  # a corrupt file, no network, no such dataset: one line naming it
        raise DatasetFormatError(f"{prefix}: could not be read ({type(e).__name__}: {e})") from None


def import_rows(cfg: ImportConfig, report: Report) -> Iterator[Item]:
    """The items of every input, in order; rows without a question or an answer are dropped
    into ``report`` with their reason."""
    if cfg.preset == "orz":
        for spec in cfg.inputs:
            yield from _orz_items(Path(spec), report)
        return
    question_field, answer_field, solution_field = PRESETS[cfg.preset]
    question_field = cfg.question_field or question_field
    answer_field = cfg.answer_field or answer_field
    solution_field = cfg.solution_field or solution_field
    if not answer_field and not solution_field:
        raise ValueError("--answer-field or --solution-field: one must name where the answer is")
    for spec in cfg.inputs:
        for source, row in _rows(spec, cfg.split):
            report.read += 1
            item = Item(question="", answer="", source=source)
            question = field_value(row, question_field)
            if not isinstance(question, str) or not question.strip():
                report.drop(item, "no_question", field=question_field)
                continue
            item.question = question.strip()
            value = field_value(row, answer_field) if answer_field else None
            if value is None and solution_field:
                solution = field_value(row, solution_field)
                value = last_boxed(solution) if isinstance(solution, str) else None
                if value is None:
                    report.drop(item, "no_boxed_answer", field=solution_field)
                    continue
            try:
                answer, parts = answer_text(value) if value is not None else ("", 0)
            except ValueError as e:
                report.drop(item, "answer_not_text", field=answer_field, detail=str(e))
                continue
            if not answer:
                report.drop(item, "no_answer", field=answer_field or solution_field)
                continue
            item.answer = answer
            if parts > 1:
                item.meta["answer_parts"] = parts
            yield item


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
    report = Report("import", list(cfg.inputs), str(cfg.out))
    with ItemWriter(cfg.out) as writer:
        for item in import_rows(cfg, report):
            writer.write(item)
            report.kept += 1
    report.sections["preset"] = cfg.preset
    report.finish(cfg.report)
    return report
