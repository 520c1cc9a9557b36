"""``orz-rl data decontaminate``: no training item shares a long span with a benchmark question.

The rule, as the GPT-3 and Llama 2 reports apply it: a training item is contaminated when its
question shares a sequence of ``ngram`` tokens (13 by default) with a benchmark question, tokens
being :func:`~orz_rl.curation.text.words` of the normal form (case, spacing and math delimiters do
not count). A benchmark question shorter than ``ngram`` tokens contaminates an item whose question
contains all of it. An n-gram that three or more questions of one benchmark share is the
benchmark's template (HumanEval's instruction line), not a question, and is not matched.

The report's ``hits`` counts the dropped items per benchmark, and each dropped item names the
benchmark, the question's index in it and the longest matching span.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from orz_rl.config import AT_LEAST_1
from orz_rl.curation.items import ItemWriter, Report, default_report, read_items
from orz_rl.curation.text import words
from orz_rl.problems.benchmarks import CODE_BENCHMARKS, DATA_DIR, KNOWN, resolve_benchmarks
from orz_rl.problems.formats import load_any_problems
from orz_rl.runtime.atomic_write import refuse_overwrite

#: An n-gram shared by this many questions of one benchmark is its template.
TEMPLATE_SHARE = 3


@dataclass(frozen=True)
class DecontaminateConfig:
    """``orz-rl data decontaminate``: drop items that share an n-gram with a benchmark question."""

    input: tyro.conf.Positional[Path]
    """The training file to clean (``.jsonl`` or ``.json``)."""
    out: Path
    """The training file to write."""
    benchmarks: tuple[str, ...] = (*KNOWN, *CODE_BENCHMARKS)
    """Benchmark names (``orz-rl eval``'s: math500, aime2024, gpqa_diamond, humaneval) or files."""
    ngram: Annotated[int, AT_LEAST_1] = 13
    """Tokens in a shared span that makes an item contaminated (GPT-3 and Llama 2: 13)."""
    data_dir: Path = DATA_DIR
    """Where the named benchmarks' files are (default: the ones shipped with orz-rl)."""
    report: Path | None = None
    """Where the JSON report goes (default: beside ``out``, ``NAME.report.json``)."""


class BenchmarkIndex:
    """Every ``n``-gram of the benchmarks' questions, and their shorter questions whole."""

    def __init__(self, questions: dict[str, list[str]], n: int) -> None:
        self.n = n
        self.grams: dict[str, tuple[str, int]] = {}
        self.short: dict[str, tuple[str, int]] = {}
        # The lengths of the short questions that start with each token: a training question is
        # only cut into spans of those lengths where such a token stands.
        self.short_lengths: dict[str, set[int]] = defaultdict(set)
        self.template_ngrams = 0
        for name, texts in questions.items():
            owners: dict[str, set[int]] = defaultdict(set)
            for index, text in enumerate(texts):
                tokens = words(text)
                if 0 < len(tokens) < n:
                    self.short.setdefault(" ".join(tokens), (name, index))
                    self.short_lengths[tokens[0]].add(len(tokens))
                for gram in _grams(tokens, n):
                    owners[gram].add(index)
            for gram, indices in owners.items():
                if len(indices) >= TEMPLATE_SHARE:
                    self.template_ngrams += 1
                else:
                    self.grams.setdefault(gram, (name, min(indices)))

    def find(self, question: str) -> tuple[str, int, str] | None:
        """``(benchmark, index, matching span)`` of the first benchmark question ``question``
        shares a span with, or ``None``."""
        tokens, n = words(question), self.n
        grams = _grams(tokens, n)
        for start, gram in enumerate(grams):
            hit = self.grams.get(gram)
            if hit is None:
                continue
            last = start  # grow the span while the next n-gram is the same question's
            while last + 1 < len(grams) and self.grams.get(grams[last + 1]) == hit:
                last += 1
            return hit[0], hit[1], " ".join(tokens[start : last + n])
        for start, token in enumerate(tokens):
            for size in self.short_lengths.get(token, ()):
                span = " ".join(tokens[start : start + size])
                hit = self.short.get(span)
                if hit is not None:
                    return hit[0], hit[1], span
        return None


def _grams(tokens: list[str], n: int) -> list[str]:
    return [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def benchmark_questions(specs: tuple[str, ...], data_dir: Path = DATA_DIR) -> dict[str, list[str]]:
    """The questions of each benchmark (a name ``orz-rl eval`` knows, or a file), by name."""
    return {
        name: [p.question for p in load_any_problems(path)]
        for name, path in resolve_benchmarks(specs, data_dir).items()
    }


def run(cfg: DecontaminateConfig) -> Report:
    """``orz-rl data decontaminate``: write ``cfg.out`` and its report."""
    if cfg.ngram < 1:
        raise ValueError(f"--ngram {cfg.ngram}: at least 1 token")
    if not cfg.benchmarks:
        raise ValueError("--benchmarks: name at least one")
    refuse_overwrite([cfg.input], out=cfg.out, report=cfg.report or default_report(cfg.out))
    questions = benchmark_questions(cfg.benchmarks, cfg.data_dir)
    index = BenchmarkIndex(questions, cfg.ngram)
    report = Report("decontaminate", [str(cfg.input)], str(cfg.out))
    hits: Counter[str] = Counter(dict.fromkeys(questions, 0))
    with ItemWriter(cfg.out) as writer:
        for item in read_items(cfg.input):
            report.read += 1
            found = index.find(item.question)
            if found is None:
                writer.write(item)
                report.kept += 1
                continue
            benchmark, position, span = found
            hits[benchmark] += 1
            report.drop(item, "contaminated", benchmark=benchmark, benchmark_item=position, span=span)
    report.sections |= {
        "ngram": cfg.ngram,
        "benchmarks": {name: len(texts) for name, texts in questions.items()},
        "template_ngrams": index.template_ngrams,
        "hits": dict(hits),
    }
    report.finish(cfg.report, "; per benchmark: " + ", ".join(f"{k} {v}" for k, v in hits.items()))
    return report
