"""The timing rule every benchmark here uses: the median of repeated runs, after a warm-up run."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def timed(fn: Callable[[], T], repeats: int, warm_up: bool = True) -> tuple[float, T]:
    """Median seconds of ``fn`` over ``repeats`` runs (after a warm-up run), and its last result."""
    out = fn() if warm_up else None
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), out
