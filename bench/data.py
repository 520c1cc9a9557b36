"""``orz-rl data dedup`` and ``decontaminate`` on a synthetic 200k-item collection: items a second.

    python bench/data.py [--items 200000] [--out runs/bench-data]

The collection is made here, seeded: questions of 20-80 tokens drawn from a 20,000-word vocabulary,
numbers and LaTeX, with 5 % exact duplicates (case and spacing changed), 5 % near duplicates (one
word changed, the same answer) and 200 items that carry a 13-token span of a MATH500 question.
Each step runs once in this process, as ``orz-rl data`` runs it, against the baseline of a plain
read-and-write pass over the same file (what every step pays before doing anything), and the
ratio of the two is printed with the items a second, and each step's dropped counts beside what
was planted (a near duplicate of a short question can fall below the similarity threshold).
"""

from __future__ import annotations

import random
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import tyro

from orz_rl.curation.decontaminate import DecontaminateConfig
from orz_rl.curation.decontaminate import run as decontaminate
from orz_rl.curation.dedup import DedupConfig
from orz_rl.curation.dedup import run as dedup
from orz_rl.curation.items import Item, ItemWriter, read_items
from orz_rl.curation.text import words
from orz_rl.problems.benchmarks import resolve_benchmark
from orz_rl.problems.formats import load_problems


@dataclass(frozen=True)
class Args:
    """What to time."""

    items: int = 200_000
    """Items in the synthetic collection."""
    out: Path = Path("runs/bench-data")
    """Where the collection and the steps' outputs go."""
    seed: int = 0
    """Seed of the collection."""


def collection(path: Path, n: int, seed: int) -> dict[str, int]:
    """Write ``n`` synthetic items to ``path``; return how many of each planted kind."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocabulary = ["".join(rng.choices(letters, k=rng.randint(3, 9))) for _ in range(20_000)]
    latex = ["$x^2$", "\\frac{1}{2}", "$\\sqrt{3}$", "$a+b$", "\\pi", "$n!$"]
    spans = []
    for problem in load_problems(resolve_benchmark("math500")[1]):
        tokens = words(problem.question)
        if len(tokens) >= 13 and not any(t in "\\$" for t in tokens):
            spans.append(" ".join(tokens[:13]))
    planted = {"duplicate": 0, "near_duplicate": 0, "contaminated": 0}
    made: list[tuple[str, str]] = []
    with ItemWriter(path) as writer:
        for row in range(n):
            roll = rng.random()
            if made and roll < 0.05:
                question, answer = rng.choice(made)
                question = question.upper().replace(" ", "  ")
                planted["duplicate"] += 1
            elif made and roll < 0.10:
                question, answer = rng.choice(made)
                tokens = question.split(" ")
                tokens[rng.randrange(len(tokens))] = rng.choice(vocabulary)
                question = " ".join(tokens)
                planted["near_duplicate"] += 1
            else:
                pieces = [
                    rng.choice(vocabulary)
                    if rng.random() < 0.8
                    else rng.choice(latex + [str(rng.randint(0, 999))])
                    for _ in range(rng.randint(20, 80))
                ]
                if planted["contaminated"] < 200 and roll > 0.99:
                    pieces.insert(len(pieces) // 2, rng.choice(spans))
                    planted["contaminated"] += 1
                question, answer = " ".join(pieces) + "?", str(rng.randint(0, 10_000))
                made.append((question, answer))
            writer.write(Item(question, answer, f"synthetic#{row}"))
    return planted


def copy(src: Path, out: Path) -> None:
    """The baseline: read every item and write it back."""
    with ItemWriter(out) as writer:
        for item in read_items(src):
            writer.write(item)


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main(args: Args) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    src = args.out / "collection.jsonl"
    planted = collection(src, args.items, args.seed)
    print(f"{args.items} items in {src}; planted: {planted}")
    base, _ = timed(lambda: copy(src, args.out / "copy.jsonl"))
    print(f"{'step':<14}{'seconds':>9}{'items/s':>10}{'x read+write':>14}  report")
    print(f"{'read+write':<14}{base:>9.1f}{args.items / base:>10.0f}{1.0:>14.2f}")
    steps = (
        ("dedup", lambda: dedup(DedupConfig(inputs=(src,), out=args.out / "dedup.jsonl"))),
        (
            "decontaminate",
            lambda: decontaminate(DecontaminateConfig(input=src, out=args.out / "clean.jsonl")),
        ),
    )
    for name, step in steps:
        seconds, report = timed(step)
        reasons = report.as_dict()["reasons"]
        print(f"{name:<14}{seconds:>9.1f}{args.items / seconds:>10.0f}{seconds / base:>14.2f}  {reasons}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak resident memory of this process: {peak:.2f} GiB")


if __name__ == "__main__":
    main(tyro.cli(Args))
