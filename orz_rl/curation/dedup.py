"""``orz-rl data dedup``: one item per question, exact and near duplicates removed.

Items are taken in order, file after file; the first of each cluster is kept.

* **Exact duplicates**: the same question after :func:`~orz_rl.curation.text.normal_form`
  (whitespace, case, LaTeX spacing and math delimiters). Reported with whether the two answers
  agree: a question given two different answers is a data error worth knowing of.
* **Near duplicates**: questions whose Jaccard similarity of word ``shingle``-grams is at least
  ``threshold``, found by MinHash LSH (``datasketch``; similarity estimated from ``num_perm``
  hashes). A near duplicate is dropped only when its answer is the kept item's (same normal
  form): math problems that differ in one number are different problems, with different answers,
  and are kept (counted as ``variants_kept``); ``--any-answer`` drops them too.

The report's ``clusters`` list each kept item with the items dropped as its duplicates and
their estimated similarity.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro

from orz_rl.config import AT_LEAST_1, Bound
from orz_rl.curation.items import Item, ItemWriter, Report, default_report, read_items
from orz_rl.curation.text import normal_form, tokens
from orz_rl.runtime.atomic_write import refuse_overwrite


@dataclass(frozen=True)
class DedupConfig:
    """``orz-rl data dedup``: drop exact and near-duplicate questions."""

    inputs: tyro.conf.Positional[tuple[Path, ...]]
    """The training files to deduplicate together, in order (``.jsonl`` or ``.json``): this is
    the step that merges the imports of several sources."""
    out: Path
    """The training file to write."""
    threshold: Annotated[float, Bound(0, 1, low_open=True)] = 0.8
    """Jaccard similarity of two questions' shingles at or above which they are near duplicates
    (1.0: exact duplicates only)."""
    shingle: Annotated[int, AT_LEAST_1] = 3
    """Words per shingle (a question shorter than this is one shingle)."""
    num_perm: Annotated[int, Bound(2)] = 128
    """MinHash permutations: more estimate the similarity closer and cost time."""
    any_answer: bool = False
    """Drop a near duplicate even when its answer differs from the kept item's."""
    report: Path | None = None
    """Where the JSON report goes (default: beside ``out``, ``NAME.report.json``)."""


def shingles(form: str, size: int) -> set[bytes]:
    """The ``size``-word shingles of a question in :func:`normal_form` (one for a shorter one)."""
    words = tokens(form)
    if len(words) <= size:
        return {" ".join(words).encode()}
    return {" ".join(words[i : i + size]).encode() for i in range(len(words) - size + 1)}


class NearIndex:
    """The kept questions' MinHashes in an LSH index; :meth:`similar` finds those at or above
    the threshold."""

    def __init__(self, threshold: float, num_perm: int) -> None:
        from datasketch import MinHash, MinHashLSH

        self._minhash = MinHash
        self._template = MinHash(num_perm=num_perm, seed=1)
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._hashes: list[np.ndarray] = []
        self.threshold = threshold

    def signature(self, parts: set[bytes]):
        template = self._template
        m = self._minhash(num_perm=len(template), permutations=template.permutations, scheme=template.scheme)
        m.update_batch(list(parts))
        return m

    def similar(self, signature) -> list[tuple[int, float]]:
        """``(key, estimated similarity)`` of each kept question at or above the threshold."""
        found = []
        for key in self._lsh.query(signature):
            similarity = float(np.mean(self._hashes[key] == signature.hashvalues))
            if similarity >= self.threshold:
                found.append((key, similarity))
        return found

    def add(self, signature) -> int:
        key = len(self._hashes)
        self._hashes.append(signature.hashvalues)
        self._lsh.insert(key, signature, check_duplication=False)
        return key


def run(cfg: DedupConfig) -> Report:
    """``orz-rl data dedup``: write ``cfg.out`` and its report."""
    if not 0.0 < cfg.threshold <= 1.0:
        raise ValueError(f"--threshold {cfg.threshold}: a Jaccard similarity in (0, 1]")
    if cfg.shingle < 1 or cfg.num_perm < 2:
        raise ValueError("--shingle must be at least 1 and --num-perm at least 2")
    if not cfg.inputs:
        raise ValueError("orz-rl data dedup: name at least one input file")
    refuse_overwrite(cfg.inputs, out=cfg.out, report=cfg.report or default_report(cfg.out))
    report = Report("dedup", [str(p) for p in cfg.inputs], str(cfg.out))
    near = NearIndex(cfg.threshold, cfg.num_perm) if cfg.threshold < 1.0 else None
    # A digest of each kept question's normal form (16 bytes, not the text: 1M items fit) ->
    # its index in `kept`, which is also its key in the near index.
    exact: dict[bytes, int] = {}
    kept: list[tuple[str, str]] = []  # (source, answer normal form) of each kept item
    members: dict[int, list[dict]] = {}
    variants = 0

    def join(item: Item, first: int, kind: str, **detail) -> None:
        members.setdefault(first, []).append({"source": item.source, "kind": kind, **detail})
        report.drop(item, kind, kept=kept[first][0], **detail)

    with ItemWriter(cfg.out) as writer:
        for item in (item for path in cfg.inputs for item in read_items(path)):
            report.read += 1
            question = normal_form(item.question)
            form = hashlib.blake2b(question.encode(), digest_size=16).digest()
            answer = normal_form(item.answer)
            if form in exact:
                first = exact[form]
                join(item, first, "duplicate", same_answer=kept[first][1] == answer)
                continue
            signature = None
            if near is not None:
                signature = near.signature(shingles(question, cfg.shingle))
                found = near.similar(signature)
                if not cfg.any_answer:  # a different answer: a different problem, kept
                    same = [(k, sim) for k, sim in found if kept[k][1] == answer]
                    variants += bool(found) and not same
                    found = same
                if found:
                    key, similarity = max(found, key=lambda pair: pair[1])
                    join(item, key, "near_duplicate", similarity=round(similarity, 3))
                    continue
            exact[form] = len(kept)
            kept.append((item.source, answer))
            if near is not None:
                near.add(signature)
            writer.write(item)
            report.kept += 1
    report.sections["threshold"] = cfg.threshold
    report.sections["variants_kept"] = variants
    report.sections["clusters"] = [
        {"kept": kept[first][0], "members": group} for first, group in sorted(members.items())
    ]
    report.finish(cfg.report)
    return report
