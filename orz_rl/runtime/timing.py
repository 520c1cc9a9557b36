"""Wall-clock seconds per named phase of a step (``time/*`` in the metrics)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Timer:
    """Accumulates wall-clock seconds per named phase (and, where a phase counts them, its tokens)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.tokens: dict[str, int] = {}

    def count(self, name: str, tokens: int) -> None:
        """Add ``tokens`` to what phase ``name`` processed."""
        self.tokens[name] = self.tokens.get(name, 0) + tokens

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


def throughput_metrics(
    phases: Timer, model_passes: Timer, generated_tokens: int, samples: int
) -> dict[str, float]:
    """``perf/*``: tokens the engine sampled over the generation's own seconds, tokens through the
    trainer's passes (actor and critic, forward and backward; this rank's) over those passes' own
    seconds, and responses over the whole step."""
    train_tokens, train_seconds = sum(model_passes.tokens.values()), sum(model_passes.seconds.values())
    out = {"perf/gen_tokens": float(generated_tokens), "perf/train_tokens": float(train_tokens)}
    if phases.seconds.get("generation", 0.0) > 0:  # rank 0's: the other ranks sample nothing
        out["perf/gen_tokens_per_s"] = generated_tokens / phases.seconds["generation"]
    if train_seconds > 0:
        out["perf/train_tokens_per_s"] = train_tokens / train_seconds
    return out | {"perf/samples_per_s": samples / phases.seconds["step"]}
