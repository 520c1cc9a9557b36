"""The items every ``orz-rl data`` step reads and writes, and the report each step leaves.

An item on disk is one ORZ training dialogue (``docs/orz_recipe.md``), which ``orz-rl train``
loads as it is; what the steps learn about it rides on the human turn::

    [{"from": "human", "value": Q, "source": "raw/math.parquet#17", "pass_rate": 0.25, ...},
     {"from": "assistant", "ground_truth": {"value": A}}]

``source`` (where the item was imported from) is always there; ``pass_rate`` and ``samples``
after ``difficulty``, ``answer_parts`` where a source gave several answers. A file is JSON Lines
(``.jsonl``, streamed a line at a time, for collections of any size) or a JSON list (``.json``,
ORZ's own files).

Each step's report (``OUT.report.json`` unless named) is a JSON object: ``step``, ``inputs``,
``output``, ``read``, ``kept``, ``dropped``, ``reasons`` (dropped count per reason),
``dropped_items`` (each dropped item's ``source``, ``reason`` and what decided it), and sections
of its own (``dedup``'s clusters, ``decontaminate``'s hits per benchmark).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orz_rl.problems.formats import DatasetFormatError, iter_json_items
from orz_rl.problems.tables import SUFFIXES
from orz_rl.runtime import atomic_write

#: The human turn's own keys; any other key there is the item's metadata.
_TURN_KEYS = ("from", "value")


@dataclass
class Item:
    """One training item: an ORZ dialogue's question and ground truth, with its metadata."""

    question: str
    answer: str
    source: str
    """Where the item was imported from: ``FILE#ROW`` (``hub:NAME/SPLIT#ROW`` from the Hub)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """What the steps learned about it (``pass_rate``, ``samples``, ``answer_parts``)."""

    def dialogue(self) -> list[dict[str, Any]]:
        """The item as an ORZ training dialogue, its metadata on the human turn."""
        human = {"from": "human", "value": self.question, "source": self.source, **self.meta}
        return [human, {"from": "assistant", "ground_truth": {"value": self.answer}}]


def parse_dialogue(obj: Any, where: str) -> Item:
    """The :class:`Item` of one ORZ training dialogue; a malformed one is a
    :class:`DatasetFormatError` naming ``where`` (``FILE:LINE``) and what is wrong."""
    try:
        human, assistant = obj
        question, answer = human["value"], assistant["ground_truth"]["value"]
    except (TypeError, ValueError, KeyError) as e:
        raise DatasetFormatError(
            f"{where}: not an ORZ training dialogue ({type(e).__name__}: {e}); expected "
            '[{"from": "human", "value": Q}, {"from": "assistant", "ground_truth": {"value": A}}] '
            "(orz-rl data import reads other layouts)"
        ) from None
    if not isinstance(question, str) or not isinstance(answer, str | int | float):
        raise DatasetFormatError(f"{where}: the question must be a string and the answer a string or number")
    meta = {k: v for k, v in human.items() if k not in _TURN_KEYS and k != "source"}
    return Item(str(question), str(answer), str(human.get("source") or where), meta)


def read_items(path: str | Path) -> Iterator[Item]:
    """The items of an ORZ training file (``.jsonl`` streamed; ``.json`` read whole)."""
    path = Path(path)
    if path.name.endswith((".parquet", ".csv")):  # else read as JSON: "not a UTF-8 text file"
        raise DatasetFormatError(
            f"{path}: {SUFFIXES[path.suffix]}, not an ORZ training file (.jsonl or .json); "
            "orz-rl data import converts it"
        )
    for lineno, obj in iter_json_items(path):
        yield parse_dialogue(obj, f"{path}:{lineno}")


class ItemWriter:
    """Writes items to ``path`` as they come: JSON Lines, or a JSON list where ``path`` ends in
    ``.json``. The file appears complete or not at all (written beside it, then renamed)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.name.endswith((".json", ".jsonl")):
            raise ValueError(f"output {str(self.path)!r}: name it .jsonl (JSON Lines) or .json (a JSON list)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._partial = self.path.with_name(self.path.name + ".partial")
        self._file = self._partial.open("w", encoding="utf-8")
        self._list = self.path.suffix == ".json"
        self.count = 0
        if self._list:
            self._file.write("[")

    def write(self, item: Item) -> None:
        line = json.dumps(item.dialogue(), ensure_ascii=False)
        if self._list:
            self._file.write(("\n" if self.count == 0 else ",\n") + line)
        else:
            self._file.write(line + "\n")
        self.count += 1

    def close(self) -> None:
        if self._list:
            self._file.write("\n]\n")
        self._file.close()
        self._partial.replace(self.path)

    def __enter__(self) -> ItemWriter:
        return self

    def __exit__(self, exc_type, *rest) -> None:
        if exc_type is None:
            self.close()
        else:  # a failed step leaves no half-written file under the output's name
            self._file.close()
            self._partial.unlink(missing_ok=True)


def default_report(output: Path) -> Path:
    """``data/train.jsonl`` -> ``data/train.report.json``."""
    stem = output.name.removesuffix(".jsonl").removesuffix(".json")
    return output.with_name(stem + ".report.json")


@dataclass
class Report:
    """What one step kept and dropped, and why; :meth:`write` saves it as JSON."""

    step: str
    inputs: list[str]
    output: str
    read: int = 0
    kept: int = 0
    dropped_items: list[dict[str, Any]] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)
    """The step's own parts of the report (clusters, hits per benchmark, ...)."""

    def drop(self, item: Item, reason: str, **detail: Any) -> None:
        """Record that ``item`` was dropped for ``reason`` (with what decided it)."""
        record = {"source": item.source, "reason": reason, **detail}
        # The whole item, so that nothing dropped is lost even where the output replaced a file.
        record["item"] = {"question": item.question, "answer": item.answer, **item.meta}
        self.dropped_items.append(record)

    def as_dict(self) -> dict[str, Any]:
        reasons = Counter(d["reason"] for d in self.dropped_items)
        return {
            "step": self.step,
            "inputs": self.inputs,
            "output": self.output,
            "read": self.read,
            "kept": self.kept,
            "dropped": len(self.dropped_items),
            "reasons": dict(sorted(reasons.items())),
            **self.sections,
            "dropped_items": self.dropped_items,
        }

    def write(self, path: Path) -> Path:
        return atomic_write.write_text(path, json.dumps(self.as_dict(), indent=1, ensure_ascii=False) + "\n")

    def finish(self, path: Path | None = None, remark: str = "") -> Path:
        """Write the report to ``path`` (default: beside the output, :func:`default_report`) and
        print its :meth:`summary`, then ``remark``; return where it went."""
        path = self.write(path or default_report(Path(self.output)))
        print(self.summary() + remark)
        return path

    def summary(self) -> str:
        """One line: what was read, kept and dropped (by reason)."""
        reasons = Counter(d["reason"] for d in self.dropped_items)
        why = ", ".join(f"{n} {r}" for r, n in reasons.most_common())
        return f"{self.step}: read {self.read}, kept {self.kept}, dropped {len(self.dropped_items)}" + (
            f" ({why})" if why else ""
        )
