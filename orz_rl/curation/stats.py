"""``orz-rl data stats``: what a training set holds, as Markdown and a PNG, for its data card.

Counts per source (the file or Hub dataset an item came from), per step (read, kept and dropped
by reason, from the steps' reports), per answer type, the questions' length in tokens
(:func:`~orz_rl.curation.text.words`) and, after ``difficulty``, the pass rates.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tyro

from orz_rl.curation.items import Item, read_items
from orz_rl.curation.text import words
from orz_rl.runtime import atomic_write

#: The order the steps run in, for the per-step table.
STEP_ORDER = ("import", "dedup", "decontaminate", "verifiable", "difficulty", "select")


@dataclass(frozen=True)
class StatsConfig:
    """``orz-rl data stats``: counts and histograms of a training file."""

    input: tyro.conf.Positional[Path]
    """The training file to describe (``.jsonl`` or ``.json``)."""
    reports: tuple[Path, ...] = ()
    """The steps' reports for the per-step table (default: every ``*.report.json`` beside the input)."""
    out: Path | None = None
    """Where the Markdown goes (default: ``NAME.stats.md`` beside the input); the PNG beside it."""


_ANSWER_TYPES = (
    ("integer", re.compile(r"[-+]?\d[\d,]*")),
    ("decimal", re.compile(r"[-+]?\d*\.\d+")),
    ("fraction", re.compile(r"[-+]?(?:\\[dt]?frac\{[^{}]*\}\{[^{}]*\}|\d+/\d+)")),
    ("option letter", re.compile(r"\(?[A-E]\)?")),
    ("interval, tuple or set", re.compile(r"[(\[].*,.*[)\]]|\\\{.*\\\}")),
    ("expression", re.compile(r".*(?:\\|[\d^_=+*/]).*")),
    ("text", re.compile(r".+")),
)


def answer_type(answer: str) -> str:
    """The first of integer, decimal, fraction, option letter, interval/tuple/set, expression or
    text that ``answer`` fully matches."""
    answer = answer.strip()
    return next((name for name, pattern in _ANSWER_TYPES if pattern.fullmatch(answer)), "empty")


def origin(source: str) -> str:
    """The file or Hub dataset of a ``source`` (``raw/a.parquet#17`` -> ``raw/a.parquet``)."""
    return re.sub(r"(?:#\d+|:\d+)$", "", source)


def collect(items: Iterable[Item]) -> dict[str, Any]:
    """The counts of :func:`markdown`, in one pass over ``items``."""
    sources: Counter[str] = Counter()
    types: Counter[str] = Counter()
    lengths, rates = [], []
    for item in items:
        sources[origin(item.source)] += 1
        types[answer_type(item.answer)] += 1
        lengths.append(len(words(item.question)))
        rate = item.meta.get("pass_rate")
        if isinstance(rate, int | float) and not isinstance(rate, bool):
            rates.append(rate)
    return {
        "items": len(lengths),
        "sources": sources.most_common(),
        "answer_types": types.most_common(),
        "lengths": sorted(lengths),
        "pass_rates": rates,
    }


def _percentile(values: list[int], q: float) -> int:
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0


def read_reports(paths: list[Path]) -> list[dict]:
    reports = []
    for path in paths:
        try:
            report = json.loads(path.read_text())
            report["step"], report["kept"], report["read"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"report {str(path)!r} is not an orz-rl data report ({e})") from None
        reports.append(report)
    rank = {step: i for i, step in enumerate(STEP_ORDER)}
    return sorted(reports, key=lambda r: rank.get(r["step"], len(rank)))


def markdown(name: str, facts: dict[str, Any], reports: list[dict], png: str) -> str:
    lines = [f"# {name}", "", f"{facts['items']} items.", ""]
    if reports:
        lines += ["| step | read | kept | dropped | why |", "|---|---|---|---|---|"]
        for r in reports:
            why = ", ".join(f"{n} {reason}" for reason, n in r.get("reasons", {}).items()) or "-"
            lines.append(f"| {r['step']} | {r['read']} | {r['kept']} | {r['read'] - r['kept']} | {why} |")
        lines.append("")
    lines += ["| source | items |", "|---|---|", *(f"| {s} | {n} |" for s, n in facts["sources"]), ""]
    lines += [
        "| answer type | items |",
        "|---|---|",
        *(f"| {t} | {n} |" for t, n in facts["answer_types"]),
        "",
    ]
    lengths = facts["lengths"]
    cells = (
        " | ".join(str(_percentile(lengths, q)) for q in (0.1, 0.5, 0.9)) + f" | {max(lengths, default=0)}"
    )
    lines += ["| question tokens | p10 | p50 | p90 | max |", "|---|---|---|---|---|", f"| | {cells} |", ""]
    rates = facts["pass_rates"]
    if rates:
        unsolved, solved = sum(r == 0 for r in rates), sum(r == 1 for r in rates)
        mean = sum(rates) / len(rates)
        lines += [f"Pass rate: mean {mean:.3f}; {unsolved} never solved, {solved} always solved.", ""]
    lines += [f"![answer types, question lengths, sources and pass rates]({png})", ""]
    return "\n".join(lines)


def figure(facts: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    types = facts["answer_types"]
    axes[0, 0].barh([t for t, _ in types][::-1], [n for _, n in types][::-1])
    axes[0, 0].set_title("answer types")
    axes[0, 1].hist(facts["lengths"] or [0], bins=40)
    axes[0, 1].set_title("question length (tokens)")
    sources = facts["sources"][:10]
    axes[1, 0].barh([s[-40:] for s, _ in sources][::-1], [n for _, n in sources][::-1])
    axes[1, 0].set_title("items per source (top 10)")
    if facts["pass_rates"]:
        axes[1, 1].hist(facts["pass_rates"], bins=20, range=(0, 1))
        axes[1, 1].set_title("pass rate")
    else:
        axes[1, 1].set_axis_off()
        axes[1, 1].text(0.5, 0.5, "no pass rates (orz-rl data difficulty)", ha="center")
    fig.tight_layout()
    with atomic_write.replacing(path) as partial:
        fig.savefig(partial, dpi=100, format=path.suffix.removeprefix(".") or "png")
    plt.close(fig)


def run(cfg: StatsConfig) -> str:
    """``orz-rl data stats``: write the Markdown and the PNG; return the Markdown."""
    stem = cfg.input.name.removesuffix(".jsonl").removesuffix(".json")
    out = cfg.out or cfg.input.with_name(stem + ".stats.md")
    paths = list(cfg.reports) or sorted(cfg.input.parent.glob("*.report.json"))
    png = out.with_suffix(".png")
    # --out-png: the PNG beside --out
    atomic_write.refuse_overwrite([cfg.input, *paths], out=out, out_png=png)
    reports = read_reports(paths)
    facts = collect(read_items(cfg.input))
    figure(facts, png)
    text = markdown(stem, facts, reports, png.name)
    atomic_write.write_text(out, text)
    print(text)
    print(f"stats: {out}, {png}")
    return text
