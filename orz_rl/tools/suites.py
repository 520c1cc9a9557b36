"""A paper's evaluation table in one command: ``orz-rl eval --suite orz --data-dir DIR``.

A suite names its benchmarks, how to find each one's published files among the downloads in
``DIR``, the shipped set to use where ``DIR`` lacks one, and the paper's figures to print beside
the run's. Finding a benchmark: an entry at the top of ``DIR`` (a file, or the folder a download
made, e.g. ``MATH-500/``, ``gpqa/``, ``MMLU-Pro/``, ``code_generation_lite/``) whose name has the
benchmark's words; inside a folder, its test split (a ``test`` file or folder where there is one);
several candidates left are one error listing them, to be named with ``--benchmarks NAME=PATH``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orz_rl.problems.benchmarks import DATA_DIR, benchmark_files
from orz_rl.problems.tables import is_table


@dataclass(frozen=True)
class SuiteBenchmark:
    """One benchmark of a suite, and how to find it among downloads."""

    name: str
    """Its name in the run (``eval.json``, the table)."""
    column: str
    """Its column in the paper's table."""
    words: tuple[tuple[str, ...], ...]
    """A download's name has all the words of one of these (letters and digits only, lower case)."""
    exclude: tuple[str, ...] = ()
    """... and none of these."""
    inside: tuple[str, ...] = ()
    """Words a file's path inside the download must have (GPQA's ``diamond`` among its three sets)."""
    prefer: str = ""
    """A folder to take where several splits' files remain (cais/mmlu's ``all`` beside its subjects)."""
    shipped: str = ""
    """The shipped set (``orz_rl/problems/orz_eval/``) used where the downloads lack it."""


@dataclass(frozen=True)
class Suite:
    """A paper's evaluation: its benchmarks, and its figures to compare with."""

    name: str
    benchmarks: tuple[SuiteBenchmark, ...]
    paper: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """Per model, per column: the paper's figure (in %)."""
    sources: str = ""
    """Where the paper's figures come from."""


#: ORZ's Table 4 (avg@16 at temperature 1, top_p 1), with its figures (docs/orz_recipe.md).
ORZ = Suite(
    name="orz",
    benchmarks=(
        SuiteBenchmark("aime2024", "AIME2024", (("aime", "2024"), ("aime24",)), shipped="aime2024"),
        SuiteBenchmark("aime2025", "AIME2025", (("aime", "2025"), ("aime25",))),
        SuiteBenchmark("math500", "MATH500", (("math500",),), shipped="math500"),
        SuiteBenchmark(
            "gpqa_diamond", "GPQA-Diamond", (("gpqa",),), inside=("diamond",), shipped="gpqa_diamond"
        ),
        SuiteBenchmark("livecodebench", "LiveCodeBench", (("livecodebench",), ("codegeneration",), ("lcb",))),
        SuiteBenchmark("mmlu", "MMLU", (("mmlu",),), exclude=("mmlupro",), prefer="all"),
        SuiteBenchmark("mmlu_pro", "MMLU-Pro", (("mmlupro",),)),
    ),
    paper={
        "ORZ-0.5B": {"AIME2024": 1.0, "AIME2025": 0.2, "MATH500": 31.0, "GPQA-Diamond": 12.1},
        "ORZ-1.5B": {"AIME2024": 3.5, "AIME2025": 1.0, "MATH500": 58.0, "GPQA-Diamond": 16.8},
        "ORZ-7B": {"AIME2024": 17.9, "AIME2025": 15.6, "MATH500": 81.4, "GPQA-Diamond": 36.6},
        "ORZ-32B": {
            "AIME2024": 48.1,
            "AIME2025": 36.0,
            "MATH500": 92.2,
            "GPQA-Diamond": 55.5,
            "MMLU": 84.9,
            "MMLU-Pro": 74.4,
        },
    },
    sources=(
        "AIME/MATH500/GPQA: the paper's and model cards' avg@16 (docs/orz_recipe.md); MMLU and MMLU-Pro: "
        "the paper's generalisation table (ORZ-32B only); LiveCodeBench: no figure found in the paper "
        "or the model cards (docs/benchmarks.md)"
    ),
)

SUITES: dict[str, Suite] = {"orz": ORZ}


def _words(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _is_test(path: Path, root: Path) -> bool:
    """Whether a file is in a test split: ``test`` (``test6``) as a word of its path under ``root``."""
    parts = re.split(r"[^a-z0-9]+", str(path.relative_to(root)).lower())
    return any(re.fullmatch(r"test\d*", part) for part in parts)


def _data_files(folder: Path) -> list[Path]:
    """The data files under ``folder``, hidden folders (a Hub download's ``.cache/``) aside."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and is_table(p)
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def locate(bench: SuiteBenchmark, entry: Path) -> Path:
    """The file or folder of ``bench`` in the download ``entry``; a ``ValueError`` naming the
    candidates where that is not one file or one folder's files."""
    if entry.is_file():
        return entry
    files = [
        f for f in _data_files(entry) if all(w in _words(str(f.relative_to(entry))) for w in bench.inside)
    ]
    tests = [f for f in files if _is_test(f, entry)]
    files = tests or files
    if bench.prefer and any(f.parent.name == bench.prefer for f in files):
        files = [f for f in files if f.parent.name == bench.prefer]
    if not files:
        raise ValueError(f"suite benchmark {bench.name!r}: {str(entry)!r} holds no data file")
    if len(files) == 1:
        return files[0]
    folders = {f.parent for f in files}
    if len(folders) == 1 and set(benchmark_files(files[0].parent)) == set(files):
        return files[0].parent  # a folder of one split's files: MMLU's CSVs, LiveCodeBench's releases
    listed = ", ".join(str(f) for f in files[:6]) + (", ..." if len(files) > 6 else "")
    raise ValueError(
        f"suite benchmark {bench.name!r}: several candidates in {str(entry)!r} ({listed}); "
        f"name one with --benchmarks {bench.name}=PATH"
    )


def find_suite(suite: Suite, data_dir: Path, given: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """``(benchmarks, notes)``: each of ``suite``'s benchmarks not among ``given`` (names of
    benchmarks named outright) as ``NAME=PATH`` found in ``data_dir``, or its shipped set; and a
    line for each found nowhere, which the run goes on without."""
    if not data_dir.is_dir():
        raise FileNotFoundError(f"--data-dir {str(data_dir)!r} is not a folder")
    entries = sorted(data_dir.iterdir())
    specs, notes = [], []
    for bench in suite.benchmarks:
        if bench.name in given:
            continue
        hits = [
            e
            for e in entries
            if not e.name.startswith(".")
            and (e.is_dir() or is_table(e))
            and any(all(w in _words(e.name) for w in words) for words in bench.words)
            and not any(x in _words(e.name) for x in bench.exclude)
            and (e.is_dir() or all(w in _words(e.name) for w in bench.inside))
        ]
        if len(hits) > 1:
            raise ValueError(
                f"suite benchmark {bench.name!r}: several downloads in {str(data_dir)!r} "
                f"({', '.join(e.name for e in hits)}); name one with --benchmarks {bench.name}=PATH"
            )
        if hits:
            specs.append(f"{bench.name}={locate(bench, hits[0])}")
        elif bench.shipped:
            specs.append(f"{bench.name}={DATA_DIR / (bench.shipped + '.json')}")
            notes.append(f"{bench.name}: not in {data_dir}; the shipped set")
        else:
            words = " or ".join("+".join(w) for w in bench.words)
            notes.append(f"{bench.name}: not in {data_dir} (a file or folder named with {words}); left out")
    return specs, notes


def suite_table(suite: Suite, results: Mapping[str, Mapping[str, float]], samples: int) -> str:
    """The paper's table: this run's avg@n per column (``-`` where it has none), then the paper's
    rows, in %."""
    columns = [b.column for b in suite.benchmarks]
    ours = {b.column: results.get(b.name, {}).get(f"avg@{samples}") for b in suite.benchmarks}
    lines = ["| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]

    def row(label: str, figures: Mapping[str, float | None], scale: float) -> str:
        cells = [f"{scale * figures[c]:.1f}" if figures.get(c) is not None else "-" for c in columns]
        return f"| {label} | " + " | ".join(cells) + " |"

    lines.append(row(f"this run (avg@{samples})", ours, 100.0))
    lines += [row(f"{model} (paper)", figures, 1.0) for model, figures in suite.paper.items()]
    return "\n".join(lines)
