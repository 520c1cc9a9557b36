"""The evaluation sets ORZ reports, shipped with the package, and how a benchmark is named.

``orz_eval/`` holds ORZ's MATH500, AIME2024 and GPQA-Diamond files in their original format
(MIT, its ``LICENSE`` beside them; ``docs/orz_recipe.md``), and ``humaneval/`` HumanEval
(:mod:`orz_rl.problems.humaneval`). A benchmark is one of those names, or the path of a file in
a format the task's loader reads.
"""

from __future__ import annotations

from pathlib import Path

from orz_rl.problems.humaneval import HUMANEVAL_FILE

#: Where the shipped evaluation files are (package data, there in any install).
DATA_DIR = Path(__file__).resolve().parent / "orz_eval"
KNOWN = ("math500", "aime2024", "gpqa_diamond")
#: Programming benchmarks shipped in their own published format, by name (``--task code``).
CODE_BENCHMARKS = {"humaneval": HUMANEVAL_FILE}


class UnknownBenchmarkError(ValueError):
    """A benchmark that is neither a known name nor an existing file."""


def resolve_benchmark(name_or_path: str, data_dir: Path = DATA_DIR) -> tuple[str, Path]:
    """``(name, file)`` of a benchmark given by name (``math500``) or by file path."""
    path = Path(name_or_path)
    if path.name.endswith((".json", ".jsonl", ".jsonl.gz")):
        if not path.is_file():
            raise FileNotFoundError(f"benchmark file {str(path)!r} does not exist")
        return path.name.split(".")[0], path
    if name_or_path in CODE_BENCHMARKS:
        return name_or_path, CODE_BENCHMARKS[name_or_path]
    if name_or_path not in KNOWN:
        known = ", ".join((*KNOWN, *CODE_BENCHMARKS))
        raise UnknownBenchmarkError(
            f"unknown benchmark {name_or_path!r}; known: {known} (or a .json/.jsonl/.jsonl.gz file path)"
        )
    path = data_dir / f"{name_or_path}.json"
    if not path.is_file():
        raise FileNotFoundError(f"benchmark {name_or_path!r}: {str(path)!r} does not exist")
    return name_or_path, path
