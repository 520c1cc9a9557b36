"""Helpers that write the source files ``orz-rl data`` reads: JSON, JSON Lines, Parquet."""

from __future__ import annotations

import json
from pathlib import Path

from orz_rl.curation.items import Item, ItemWriter


def write_json(path: Path, rows: list) -> Path:
    path.write_text(json.dumps(rows))
    return path


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_items(path: Path, pairs: list[tuple[str, str]], **meta) -> Path:
    """A training file of ``(question, answer)`` pairs, sources ``NAME#ROW``."""
    with ItemWriter(path) as writer:
        for row, (question, answer) in enumerate(pairs):
            writer.write(Item(question, answer, f"{path.name}#{row}", dict(meta)))
    return path


def report(path: Path) -> dict:
    """The report a step wrote beside its output ``path``."""
    return json.loads(path.with_name(path.name.split(".")[0] + ".report.json").read_text())
