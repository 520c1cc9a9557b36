"""A soak run: does the trainer's memory stay flat over a long run of the CPU default?

    python bench/soak.py [--steps 1000] [--minutes 0] [--out runs/soak]

Trains ``orz-rl train cpu-default`` for ``steps`` steps (or until ``minutes`` pass, if set), in a
process of its own, then reads ``system/rss_gib`` (the trainer's resident memory at each step's
end) from its ``metrics.jsonl`` and prints it at step 50 and at the end, the least-squares slope
from step 50 on, and the growth from step 50 to the end. Growth above ``max_growth`` (5 %) is a
leak: the script exits 1. The first 50 steps are left out because caches (the allocator's,
sympy's, the grader's) fill there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tyro

from training import train_cpu_default

#: The step the baseline is taken at.
WARM = 50


@dataclass(frozen=True)
class Args:
    """What to run."""

    steps: int = 1000
    """Steps to train."""
    minutes: float = 0.0
    """Stop after this many minutes instead (0: run all ``steps``)."""
    out: Path = Path("runs/soak")
    """The run directory (replaced)."""
    max_growth: float = 0.05
    """Largest share the resident memory may grow by from step 50 to the end."""


def slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of ``(step, value)`` points, per step."""
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    return sum((x - mx) * (y - my) for x, y in points) / max(sum((x - mx) ** 2 for x, _ in points), 1e-12)


def main(args: Args) -> int:
    # Enough passes over the prompts for every step; no checkpoint but the last.
    fields = ["--max-steps", str(args.steps), "--num-episodes", str(args.steps)]
    rows = train_cpu_default(args.out, *fields, "--max-minutes", str(args.minutes or -1))
    points = [(r["step"], r["system/rss_gib"]) for r in rows if r["step"] >= WARM]
    if len(points) < 2:
        print(f"only {len(rows)} steps: the soak needs more than {WARM}")
        return 1
    (first_step, first), (last_step, last) = points[0], points[-1]
    growth = last / first - 1
    print(f"resident memory: step {first_step} {first:.3f} GiB, step {last_step} {last:.3f} GiB")
    print(f"growth {100 * growth:+.2f} %, slope {100 * slope(points) * 2**10:+.3f} MiB per 100 steps")
    print(f"peak of the run: {max(r['system/peak_rss_gib'] for r in rows):.3f} GiB")
    if growth > args.max_growth:
        print(f"LEAK: more than {100 * args.max_growth:.0f} % growth from step {first_step} to {last_step}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(tyro.cli(Args)))
