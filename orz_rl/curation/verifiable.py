"""``orz-rl data verifiable``: keep only items whose answer the math reward can grade.

ORZ's reward compares one boxed answer with the truth (:mod:`orz_rl.rewards.math_answers`). An
item it cannot grade earns 0 whatever the model writes and wastes its samples. Each rule below is
a reason in the report, checked in this order:

* ``no_answer``: the truth is empty;
* ``malformed_answer``: control characters or TeX definitions, which the grader refuses
  (:data:`orz_rl.rewards.math_grader.MALFORMED`), or longer than its
  :data:`~orz_rl.rewards.math_grader.MAX_ANSWER_CHARS`;
* ``proof``: the question asks for a proof ("prove", "show that", "demonstrate that") or the
  truth is one ("proof", a lone QED mark);
* ``multi_part``: the source gave several answers (``answer_parts``), the truth labels two or more
  parts (``(a) 3, (b) 4``), or the question asks parts (a) and (b), or (i) and (ii);
* ``choice_without_options``: the truth is an option letter (A-E) the question does not list;
* ``free_text``: the truth is a phrase of four or more words with no number or formula;
* ``unparsable_answer``: ``math-verify`` reads nothing in it (plain numbers and option letters
  need no parse), or its parse ran past ``timeout`` seconds (``parse_timeout``); parses run in
  worker processes that are killed past their limit, so a crafted truth cannot hang the step.
"""

from __future__ import annotations

import multiprocessing
import os
import re
from collections.abc import Iterable, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Annotated

import tyro

from orz_rl.config import AT_LEAST_0, POSITIVE
from orz_rl.curation.items import Item, ItemWriter, Report, default_report, read_items
from orz_rl.rewards.math_answers import is_plain_number, truth_parses
from orz_rl.rewards.math_grader import MALFORMED, MAX_ANSWER_CHARS
from orz_rl.runtime.atomic_write import refuse_overwrite


@dataclass(frozen=True)
class VerifiableConfig:
    """``orz-rl data verifiable``: drop items the rule-based math reward cannot grade."""

    input: tyro.conf.Positional[Path]
    """The training file to check (``.jsonl`` or ``.json``)."""
    out: Path
    """The training file to write."""
    workers: Annotated[int, AT_LEAST_0] = 0
    """Processes that parse answers with math-verify (0: one per CPU core)."""
    timeout: Annotated[float, POSITIVE] = 5.0
    """Seconds a batch of parses may take; a batch past it is parsed again one answer at a time,
    each with this limit, and an answer past it is dropped (``parse_timeout``)."""
    report: Path | None = None
    """Where the JSON report goes (default: beside ``out``, ``NAME.report.json``)."""


_PROOF_QUESTION = re.compile(r"\b(?:prove|show that|demonstrate that)\b", re.IGNORECASE)
_PROOF_ANSWER = re.compile(
    r"^\s*(?:(?:see |the )?proof\.?|q\.?e\.?d\.?|\\(?:blacksquare|square|qed)|∎|□)\s*$", re.IGNORECASE
)
_PART_LABEL = re.compile(r"\((?:[a-h]|i{1,3}|iv|vi{0,3}|[1-9])\)(?=\s|$|[^\w,)])")
_QUESTION_PARTS = (re.compile(r"\(a\)[\s\S]*\(b\)"), re.compile(r"\(i\)[\s\S]*\(ii\)"))
_LETTER = re.compile(r"^\s*\(?([A-E])\)?\s*$")
_WORDS = re.compile(r"[A-Za-z]{2,}")
_FORMULA = re.compile(r"[\d\\^_=+*/<>|]")


def rule_verdict(item: Item) -> tuple[str, dict]:
    """``(reason, detail)`` of the first rule ``item`` breaks but the parse, or ``("", {})``."""
    answer, question = item.answer.strip(), item.question
    if not answer:
        return "no_answer", {}
    if len(answer) > MAX_ANSWER_CHARS or MALFORMED.search(answer):
        return "malformed_answer", {"answer": answer[:200]}
    asked = _PROOF_QUESTION.search(question)
    if asked or _PROOF_ANSWER.match(answer):
        return "proof", {"match": asked.group(0) if asked else answer}
    if int(item.meta.get("answer_parts", 1)) > 1:
        return "multi_part", {"parts": item.meta["answer_parts"]}
    labels = set(_PART_LABEL.findall(answer))
    if len(labels) >= 2:
        return "multi_part", {"labels": sorted(labels)}
    for parts in _QUESTION_PARTS:
        if parts.search(question):
            return "multi_part", {"question_parts": parts.pattern}
    letter = _LETTER.match(answer)
    if letter and not re.search(rf"(?:^|[\s(]){letter.group(1)}(?:\)|\.|:)", question):
        return "choice_without_options", {"answer": answer}
    if len(_WORDS.findall(answer)) >= 4 and not _FORMULA.search(answer):
        return "free_text", {"answer": answer[:200]}
    return "", {}


def needs_parse(answer: str) -> bool:
    """Whether only math-verify can tell if ``answer`` parses (not a plain number or a letter)."""
    return not is_plain_number(answer) and not _LETTER.match(answer)


def parses(answers: list[str]) -> list[bool]:
    """Whether math-verify reads something in each truth, as the reward parses it (run in a
    worker)."""
    return [truth_parses(answer) for answer in answers]


class ParsePool:
    """math-verify parses in worker processes, batch by batch, with a time limit."""

    def __init__(self, workers: int, timeout: float) -> None:
        from pebble import ProcessPool

        self.timeout = timeout
        # spawn: nothing of this process's state is needed there, and fork is unsafe with threads.
        self._pool = ProcessPool(max_workers=workers, context=multiprocessing.get_context("spawn"))

    def verdicts(self, batches: list[list[str]]) -> list[list[str]]:
        """For each answer of each batch: ``""`` (parses), ``unparsable_answer`` or
        ``parse_timeout``."""
        futures = [self._pool.schedule(parses, args=(batch,), timeout=self.timeout) for batch in batches]
        out = []
        for batch, future in zip(batches, futures, strict=True):
            try:
                out.append(["" if ok else "unparsable_answer" for ok in future.result()])
            except Exception:  # past the limit (FutureTimeout), or a worker died: one at a time
                out.append([self._one(answer) for answer in batch])
        return out

    def _one(self, answer: str) -> str:
        future = self._pool.schedule(parses, args=([answer],), timeout=self.timeout)
        try:
            return "" if future.result()[0] else "unparsable_answer"
        except FutureTimeout:
            return "parse_timeout"
        except Exception:
            return "unparsable_answer"

    def close(self) -> None:
        self._pool.stop()
        self._pool.join()


def _chunks(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


#: Answers per worker task, and tasks in flight per worker.
BATCH, IN_FLIGHT = 32, 8


def run(cfg: VerifiableConfig) -> Report:
    """``orz-rl data verifiable``: write ``cfg.out`` and its report."""
    if cfg.timeout <= 0:
        raise ValueError(f"--timeout {cfg.timeout}: seconds, above 0")
    workers = cfg.workers or os.cpu_count() or 1
    refuse_overwrite([cfg.input], out=cfg.out, report=cfg.report or default_report(cfg.out))
    report = Report("verifiable", [str(cfg.input)], str(cfg.out))
    pool = ParsePool(workers, cfg.timeout)
    try:
        with ItemWriter(cfg.out) as writer:
            for chunk in _chunks(read_items(cfg.input), BATCH * IN_FLIGHT * workers):
                verdicts = [rule_verdict(item) for item in chunk]
                to_parse = [
                    i
                    for i, (reason, _) in enumerate(verdicts)
                    if not reason and needs_parse(chunk[i].answer.strip())
                ]
                batches = [to_parse[k : k + BATCH] for k in range(0, len(to_parse), BATCH)]
                answers = [[chunk[i].answer.strip() for i in batch] for batch in batches]
                for batch, reasons in zip(batches, pool.verdicts(answers), strict=True):
                    for i, reason in zip(batch, reasons, strict=True):
                        if reason:
                            verdicts[i] = (reason, {"answer": chunk[i].answer[:200]})
                for item, (reason, detail) in zip(chunk, verdicts, strict=True):
                    report.read += 1
                    if reason:
                        report.drop(item, reason, **detail)
                    else:
                        writer.write(item)
                        report.kept += 1
    finally:
        pool.close()
    report.finish(cfg.report)
    return report
