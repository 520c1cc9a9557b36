"""The next rollout, sampled in a background thread while the trainer finishes a step
(``ppo.overlap_critic_update``).

Nothing in a rollout reads the critic, so it can be sampled during the critic's update; the
trainer takes it at the next step. A checkpoint taken meanwhile resumes from the RNG and
sampler states of before it (:attr:`RolloutAhead.before`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from tensordict import TensorDict


def sample_rollout(rollouts: Iterator[TensorDict], policy, env) -> tuple[TensorDict, dict[str, float]]:
    """The collector's next batch, and its seconds: generating (scoring apart), scoring (the env's
    ``last_score_seconds``), and inside the engine's ``generate`` (the policy's ``generate_seconds``)."""
    start, engine_before = time.perf_counter(), getattr(policy, "generate_seconds", 0.0)
    batch = next(rollouts)
    scoring = getattr(env, "last_score_seconds", 0.0)
    return batch, {
        "generation": time.perf_counter() - start - scoring,
        "scoring": scoring,
        "engine": getattr(policy, "generate_seconds", 0.0) - engine_before,
    }


class RolloutAhead:
    """At most one rollout sampled in a thread of its own."""

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(1, "orz-rl-rollout")
        self._future: Future | None = None
        #: What the run resumes from while a rollout is sampled ahead (set by :meth:`start`).
        self.before: dict[str, Any] | None = None

    @property
    def pending(self) -> bool:
        return self._future is not None

    def start(self, sample: Callable[[], Any], before: dict[str, Any]) -> None:
        """Run ``sample`` in the thread; ``before``: the state a checkpoint taken meanwhile keeps."""
        self.before, self._future = before, self._thread.submit(sample)

    def take(self) -> Any:
        """Wait for the rollout and hand it over (its exception, if it raised)."""
        result = self._future.result()
        self._future = self.before = None
        return result

    def close(self) -> None:
        """Wait for a rollout still sampled and drop it (``before`` stays for the last checkpoint)."""
        if self._future is not None:
            self._future.result()
            self._future = None
        self._thread.shutdown()
