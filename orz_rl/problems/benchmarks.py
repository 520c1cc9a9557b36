"""The evaluation sets ORZ reports, shipped with the package, and how a benchmark is named.

``orz_eval/`` holds ORZ's MATH500, AIME2024 and GPQA-Diamond files in their original format
(MIT, its ``LICENSE`` beside them; ``docs/orz_recipe.md``), and ``humaneval/`` HumanEval
(:mod:`orz_rl.problems.humaneval`). A benchmark is one of those names, the path of a data file
(:mod:`orz_rl.problems.tables`) or of a folder of them (the original MMLU's 57 CSVs,
LiveCodeBench's release files), or ``NAME=PATH`` to name one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from orz_rl.problems.humaneval import HUMANEVAL_FILE
from orz_rl.problems.tables import SUFFIXES, is_table

#: Where the shipped evaluation files are (package data, there in any install).
DATA_DIR = Path(__file__).resolve().parent / "orz_eval"
KNOWN = ("math500", "aime2024", "gpqa_diamond")
#: Programming benchmarks shipped in their own published format, by name (``--task code``).
CODE_BENCHMARKS = {"humaneval": HUMANEVAL_FILE}

# NAME=PATH: a name of letters, digits, ``_``, ``-`` and ``.``, then the path.
_NAMED = re.compile(r"([\w.-]+)=(.+)")


class UnknownBenchmarkError(ValueError):
    """A benchmark that is neither a known name nor an existing file, or two of one name."""


def resolve_benchmark(spec: str, data_dir: Path = DATA_DIR) -> tuple[str, Path]:
    """``(name, file)`` of a benchmark given by name (``math500``), by file path (named by the
    file's name up to its first dot), or as ``NAME=PATH``."""
    named = _NAMED.fullmatch(spec)
    if named and not Path(spec).exists():
        name, path = named.group(1), Path(named.group(2))
        if not path.exists():
            raise FileNotFoundError(f"benchmark {name!r}: {str(path)!r} does not exist")
        benchmark_files(path)
        return name, path
    path = Path(spec)
    if path.is_dir():
        benchmark_files(path)
        return path.name.split(".")[0], path
    if is_table(path) or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"benchmark file {str(path)!r} does not exist")
        _check_suffix(path)
        return path.name.split(".")[0], path
    if spec in CODE_BENCHMARKS:
        return spec, CODE_BENCHMARKS[spec]
    if spec not in KNOWN:
        known = ", ".join((*KNOWN, *CODE_BENCHMARKS))
        raise UnknownBenchmarkError(
            f"unknown benchmark {spec!r}; known: {known}, or a data file's path "
            f"({', '.join(SUFFIXES)}), or NAME=PATH"
        )
    path = data_dir / f"{spec}.json"
    if not path.is_file():
        raise FileNotFoundError(f"benchmark {spec!r}: {str(path)!r} does not exist")
    return spec, path


def benchmark_files(path: Path) -> list[Path]:
    """The data files of a benchmark: the file itself, or a folder's data files (not its
    subfolders'), in name order; a folder with none is an :class:`UnknownBenchmarkError`."""
    if not path.is_dir():
        _check_suffix(path)
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and is_table(p))
    if not files:
        raise UnknownBenchmarkError(
            f"benchmark folder {str(path)!r} holds no data file ({', '.join(SUFFIXES)}); its subfolders are "
            "not read: name the file or folder with the split, e.g. NAME=PATH/test"
        )
    return files


def _check_suffix(path: Path) -> None:
    if not is_table(path):
        known = ", ".join(f"{suffix} ({what})" for suffix, what in SUFFIXES.items())
        raise UnknownBenchmarkError(
            f"benchmark file {str(path)!r}: not a format orz-rl reads; it reads {known}"
        )


def resolve_benchmarks(specs: Sequence[str], data_dir: Path = DATA_DIR) -> dict[str, Path]:
    """Each benchmark's file by name (:func:`resolve_benchmark`); two of one name are one
    :class:`UnknownBenchmarkError` naming both files."""
    out: dict[str, Path] = {}
    for spec in specs:
        name, path = resolve_benchmark(spec, data_dir)
        if name in out:
            raise UnknownBenchmarkError(
                f"two benchmarks named {name!r}: {str(out[name])!r} and {str(path)!r}; "
                f"name each file as NAME=PATH (e.g. {name}_2={path})"
            )
        out[name] = path
    return out
