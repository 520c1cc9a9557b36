"""Wall-clock seconds per named phase of a step (``time/*`` in the metrics)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Timer:
    """Accumulates wall-clock seconds per named phase."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def step_time_metrics(phases: Timer, model_passes: Timer, engine_seconds: float) -> dict[str, float]:
    """``time/<phase>`` of each phase, and the step split into the model's own arithmetic (the
    engine sampling, ``engine_seconds``; the trainer's forward and backward passes) and the rest,
    ``time/outside_model``: what ORZ's scale multiplies for nothing."""
    out = {f"time/{k}": v for k, v in phases.seconds.items()}
    if "generation_wait" in phases.seconds:  # sampled during the last step: only the wait is in this one
        engine_seconds = min(engine_seconds, phases.seconds["generation_wait"])
    out["time/model_engine"] = engine_seconds
    out["time/model_forward_backward"] = sum(model_passes.seconds.values())
    out["time/outside_model"] = phases.seconds["step"] - engine_seconds - out["time/model_forward_backward"]
    return out
