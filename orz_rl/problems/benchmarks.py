"""The evaluation sets ORZ reports, shipped with the package, and how a benchmark is named.

``orz_eval/`` holds ORZ's MATH500, AIME2024 and GPQA-Diamond files in their original format
(MIT, its ``LICENSE`` beside them; ``docs/orz_recipe.md``). A benchmark is one of those names,
or the path of a file in a format the task's loader reads.
"""

from __future__ import annotations

from pathlib import Path

#: Where the shipped evaluation files are (package data, there in any install).
DATA_DIR = Path(__file__).resolve().parent / "orz_eval"
KNOWN = ("math500", "aime2024", "gpqa_diamond")


class UnknownBenchmarkError(ValueError):
    """A benchmark that is neither a known name nor an existing file."""


def resolve_benchmark(name_or_path: str, data_dir: Path = DATA_DIR) -> tuple[str, Path]:
    """``(name, file)`` of a benchmark given by name (``math500``) or by file path."""
    path = Path(name_or_path)
    if path.suffix in (".json", ".jsonl"):
        if not path.is_file():
            raise FileNotFoundError(f"benchmark file {str(path)!r} does not exist")
        return path.stem, path
    if name_or_path not in KNOWN:
        raise UnknownBenchmarkError(
            f"unknown benchmark {name_or_path!r}; known: {', '.join(KNOWN)} (or a .json/.jsonl file path)"
        )
    path = data_dir / f"{name_or_path}.json"
    if not path.is_file():
        raise FileNotFoundError(f"benchmark {name_or_path!r}: {str(path)!r} does not exist")
    return name_or_path, path
