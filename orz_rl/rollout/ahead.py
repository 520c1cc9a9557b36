"""Rollouts sampled in a background thread while the trainer trains.

* ``ppo.overlap_critic_update``: nothing in a rollout reads the critic, so the next one is sampled
  during the critic's update, from the weights the actor's update just gave; the trainer takes it
  at the next step. A checkpoint taken meanwhile resumes from the RNG and sampler states of before
  it (:attr:`RolloutAhead.before`) and samples it again, the same.
* ``rollout.max_staleness k``: the next k steps' rollouts are sampled while a step trains, from
  the weights synced before each starts. A checkpoint saves them, sampled
  (:meth:`RolloutAhead.settle`): sampled again they would come from newer weights.
"""

from __future__ import annotations

import time
from collections import deque
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
    """Rollouts sampled in a thread of its own, in order, taken oldest first.

    One thread runs everything handed to it in the order handed: rollouts, and weight syncs
    (:meth:`queue`) between them, so that a sync never lands while the engine samples and
    each rollout samples the weights synced before it.
    """

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(1, "orz-rl-rollout")
        self._futures: deque[Future] = deque()
        self._work: deque[Future] = deque()
        #: What the run resumes from while a rollout is sampled ahead (set by :meth:`start`).
        self.before: dict[str, Any] | None = None

    @property
    def pending(self) -> int:
        """Rollouts started (or handed back by :meth:`preload`) and not taken yet."""
        return len(self._futures)

    def start(self, sample: Callable[[], Any], before: dict[str, Any] | None = None) -> None:
        """Queue ``sample`` in the thread; ``before``: the state a checkpoint taken meanwhile keeps
        (``ppo.overlap_critic_update``; ``None`` keeps the one set before)."""
        if before is not None:
            self.before = before
        self._futures.append(self._thread.submit(sample))

    def queue(self, work: Callable[[], Any]) -> None:
        """Run ``work`` (a weight sync) in the thread after what is queued, before what comes next,
        without waiting for it; an exception it raises comes out of the next :meth:`take`."""
        self._work.append(self._thread.submit(work))

    def _raise_from_work(self) -> None:
        while self._work and self._work[0].done():
            self._work.popleft().result()

    def take(self) -> Any:
        """Wait for the oldest rollout and hand it over (its exception, if it raised)."""
        result = self._futures.popleft().result()
        self._raise_from_work()
        if not self._futures:
            self.before = None
        return result

    def settle(self) -> list[Any]:
        """Wait for everything queued and return the rollouts, oldest first, still queued (a
        checkpoint saves them; an evaluation may use the engine after)."""
        results = [f.result() for f in self._futures]
        while self._work:
            self._work.popleft().result()
        return results

    def preload(self, results: list[Any]) -> None:
        """Queue rollouts already sampled (a checkpoint's), to be taken before any started."""
        for result in results:
            done: Future = Future()
            done.set_result(result)
            self._futures.append(done)

    def close(self) -> None:
        """Wait for the rollouts still sampled and stop the thread; they stay for the last
        checkpoint (:meth:`settle`), as ``before`` does."""
        self.settle()
        self._thread.shutdown()
