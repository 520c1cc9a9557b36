"""The rows of a data file in any format benchmarks are published in.

``.parquet`` (the Hugging Face Hub's own), ``.csv`` (GPQA, the original MMLU), ``.json`` (a list
of objects), ``.jsonl`` and ``.jsonl.gz`` (one object per line). Each row comes with where it is,
``FILE:LINE`` (``FILE: row N`` in a Parquet file, rows from 1), for messages about it.

* Parquet goes through Hugging Face ``datasets`` (streamed, so a file of any size passes in
  constant memory), whose rows keep the file's types: lists stay lists, integers integers.
* JSON and JSON Lines go through orz-rl's reader, which keeps each value as the file writes it:
  ``datasets`` turns a column that mixes numbers and strings (answers often do) into JSON text.
* CSV goes through the standard library's ``csv``: every cell is the file's text. ``datasets``'
  CSV reader is pandas', which reads an option ``None``, ``NA`` or ``nan`` as a missing value and
  ``1`` as an integer. A CSV file's first row is its header, except where it is a row of
  Hendrycks' MMLU (six cells, the last a letter A-D), which is published without one and names
  its subject in the file name (``abstract_algebra_test.csv``): its rows get a ``subject``.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


class DatasetFormatError(ValueError):
    """A data file that cannot be read as its format, or an item that follows no known layout; the
    message names the file and the line or row."""


#: The file name endings read here, and what each is.
SUFFIXES: dict[str, str] = {
    ".parquet": "Parquet",
    ".csv": "CSV",
    ".json": "a JSON list",
    ".jsonl": "JSON Lines",
    ".jsonl.gz": "gzipped JSON Lines",
}

#: The columns of Hendrycks' MMLU CSVs, which have no header row.
MMLU_CSV_COLUMNS = ("question", "A", "B", "C", "D", "answer")


def is_table(path: str | Path) -> bool:
    """Whether ``path``'s name ends in one of :data:`SUFFIXES`."""
    return str(path).endswith(tuple(SUFFIXES))


def iter_rows(path: str | Path) -> Iterator[tuple[str, Any]]:
    """``(where, row)`` of every row of ``path``, in order, by its name's ending
    (:data:`SUFFIXES`). A missing file is a ``FileNotFoundError``; one that does not read as its
    format a :class:`DatasetFormatError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file {str(path)!r} does not exist")
    name = path.name
    if name.endswith(".parquet"):
        yield from _parquet_rows(path)
    elif name.endswith(".csv"):
        yield from _csv_rows(path)
    elif name.endswith((".json", ".jsonl", ".jsonl.gz")):
        for lineno, item in iter_json_items(path):
            yield f"{path}:{lineno}", item
    else:
        known = ", ".join(f"{suffix} ({what})" for suffix, what in SUFFIXES.items())
        raise DatasetFormatError(f"{path}: not a data file orz-rl reads; it reads {known}")


def _parquet_rows(path: Path) -> Iterator[tuple[str, Any]]:
    import datasets

    # Checked here: datasets logs its own failure on such a file before raising it.
    size = path.stat().st_size
    with path.open("rb") as file:
        head = file.read(4)
        file.seek(max(size - 4, 0))
        tail = file.read(4)
    if size < 12 or head != b"PAR1" or tail != b"PAR1":
        raise DatasetFormatError(
            f"{path}: could not be read as Parquet (it does not start and end with Parquet's magic "
            "bytes PAR1: not a Parquet file, or a truncated one)"
        )
    try:
        rows = datasets.load_dataset("parquet", data_files=str(path), split="train", streaming=True)
        for number, row in enumerate(rows, start=1):
            yield f"{path}: row {number}", row
    except Exception as e:  # not Parquet, truncated, unreadable: one line naming the file
        raise DatasetFormatError(f"{path}: could not be read as Parquet ({type(e).__name__}: {e})") from None


def _csv_rows(path: Path) -> Iterator[tuple[str, Any]]:
    try:
        # utf-8-sig: a byte-order mark, as spreadsheet programs write, is not part of the first header.
        with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as file:
            reader = csv.reader(_text_lines(path, file))
            first = next(reader, None)
            if first is None:
                return
            extra: dict[str, str] = {}
            if _is_mmlu_row(first):
                header, pending = list(MMLU_CSV_COLUMNS), [(1, first)]
                # Hendrycks' files name their subject: abstract_algebra_test.csv.
                extra["subject"] = re.sub(r"_(?:test|val|dev|train)$", "", path.name[: -len(".csv")])
            else:
                header, pending = [cell.strip() for cell in first], []
            start = reader.line_num
            for lineno, cells in _chain(pending, reader, start):
                if not any(cell.strip() for cell in cells):
                    continue
                if len(cells) != len(header):
                    raise DatasetFormatError(
                        f"{path}:{lineno}: {len(cells)} cells where the header has {len(header)} columns"
                    )
                yield f"{path}:{lineno}", dict(zip(header, cells, strict=True)) | extra
    except csv.Error as e:
        raise DatasetFormatError(f"{path}: not a CSV file the csv module reads ({e})") from None


def _chain(pending: list[tuple[int, list[str]]], reader: Any, start: int) -> Iterator[tuple[int, list[str]]]:
    """The pending rows, then each row of ``reader`` with the line it starts on (a quoted cell can
    span lines: ``reader.line_num`` is where the row ends)."""
    yield from pending
    line = start + 1
    for cells in reader:
        yield line, cells
        line = reader.line_num + 1


def _is_mmlu_row(cells: list[str]) -> bool:
    return len(cells) == 6 and cells[5].strip() in ("A", "B", "C", "D")


def iter_json_items(path: str | Path) -> Iterator[tuple[int, Any]]:
    """``(line, item)`` pairs of a JSON list, or of a JSON Lines file (``.jsonl``, or gzipped
    ``.jsonl.gz`` as HumanEval ships); a plain ``.jsonl`` file is read a line at a time, so a
    collection of any size streams. Invalid JSON is a :class:`DatasetFormatError` at its line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file {str(path)!r} does not exist")
    if path.name.endswith(".jsonl"):
        with path.open(encoding="utf-8", errors="surrogateescape") as lines:
            yield from _json_lines(path, enumerate(_text_lines(path, lines), start=1))
        return
    if path.name.endswith(".jsonl.gz"):
        try:
            data = gzip.decompress(path.read_bytes())
        except (OSError, EOFError) as e:
            raise DatasetFormatError(f"{path}: not a gzipped UTF-8 JSON Lines file ({e})") from None
        text = _decoded(path, data)
        yield from _json_lines(path, enumerate(text.splitlines(), start=1))
        return
    text = _decoded(path, path.read_bytes())
    items = _loads(text, path)
    if not isinstance(items, list):
        raise DatasetFormatError(f"{path}:1: expected a JSON list of items (or a .jsonl file)")
    yield from zip(_item_lines(text), items, strict=True)


def _text_lines(path: Path, lines: Iterable[str]) -> Iterator[str]:
    """The lines of a file opened with ``errors="surrogateescape"``, checked: the first holding a
    byte that is not UTF-8 is a :class:`DatasetFormatError` at it (a binary file, most often)."""
    for lineno, line in enumerate(lines, start=1):
        if not line.isascii():
            try:
                line.encode("utf-8")  # an escaped byte is a lone surrogate, which does not encode
            except UnicodeEncodeError as e:
                byte = ord(line[e.start]) - 0xDC00
                raise DatasetFormatError(_not_utf8(path, lineno, e.start + 1, byte)) from None
        yield line


def _decoded(path: Path, data: bytes) -> str:
    """``data``, the bytes of ``path``, as UTF-8 text; else a :class:`DatasetFormatError` at the
    line of the first byte that is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line_start = data.rfind(b"\n", 0, e.start) + 1
        lineno = data.count(b"\n", 0, e.start) + 1
        column = len(data[line_start : e.start].decode("utf-8")) + 1
        raise DatasetFormatError(_not_utf8(path, lineno, column, data[e.start])) from None


def _not_utf8(path: Path, lineno: int, column: int, byte: int) -> str:
    return (
        f"{path}:{lineno}: not a UTF-8 text file (byte 0x{byte:02x}, character {column} of the line, "
        "is not UTF-8: a binary file?)"
    )


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


def _json_lines(path: Path, lines: Iterable[tuple[int, str]]) -> Iterator[tuple[int, Any]]:
    for lineno, line in lines:
        if line.strip():
            yield lineno, _loads(line, path, lineno)


def _loads(text: str, path: Path, lineno: int = 0) -> Any:
    """``text`` parsed; invalid or too deeply nested JSON is a :class:`DatasetFormatError` at
    ``lineno`` of ``path`` (0: where the parser stopped, or the file)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DatasetFormatError(f"{path}:{lineno or e.lineno}: invalid JSON: {e.msg}") from None
    except RecursionError:
        where = f"{path}:{lineno}" if lineno else str(path)
        raise DatasetFormatError(f"{where}: JSON nested too deeply to read") from None
