"""Rollouts sampled ahead: their order, the weight syncs between them, and what a checkpoint keeps."""

from __future__ import annotations

import threading
import time

import pytest

from orz_rl.rollout.ahead import RolloutAhead


class _Engine:
    """Samples its weights' version, slowly, and records syncs and samples in the order they run."""

    def __init__(self) -> None:
        self.version, self.log, self.threads = 0, [], set()

    def sample(self) -> int:
        time.sleep(0.02)
        self.threads.add(threading.current_thread().name)
        self.log.append(("sample", self.version))
        return self.version

    def sync(self, version: int) -> None:
        self.log.append(("sync", version))
        self.version = version


def test_rollouts_are_taken_oldest_first_each_from_the_weights_synced_before_it():
    engine, ahead = _Engine(), RolloutAhead()
    ahead.start(engine.sample)
    ahead.queue(lambda: engine.sync(1))
    ahead.start(engine.sample)
    ahead.start(engine.sample)
    ahead.queue(lambda: engine.sync(2))
    assert ahead.pending == 3
    assert [ahead.take(), ahead.take()] == [0, 1]
    ahead.start(engine.sample)
    assert [ahead.take(), ahead.take()] == [1, 2]
    ahead.close()
    assert engine.log == [
        ("sample", 0),
        ("sync", 1),
        ("sample", 1),
        ("sample", 1),
        ("sync", 2),
        ("sample", 2),
    ]
    assert engine.threads == {"orz-rl-rollout_0"}, "one thread, off the trainer's"


def test_settle_waits_for_everything_and_keeps_the_rollouts_to_take():
    engine, ahead = _Engine(), RolloutAhead()
    ahead.start(engine.sample)
    ahead.queue(lambda: engine.sync(5))
    assert ahead.settle() == [0]
    assert engine.version == 5, "the sync behind the rollout ran too"
    assert ahead.pending == 1 and ahead.take() == 0
    ahead.close()


def test_preloaded_rollouts_come_before_those_started_after():
    engine, ahead = _Engine(), RolloutAhead()
    ahead.preload(["saved"])
    ahead.start(engine.sample)
    assert [ahead.take(), ahead.take()] == ["saved", 0]
    ahead.close()


def test_a_failed_sync_is_raised_at_the_next_take():
    def broken() -> None:
        raise OSError("the engine is gone")

    engine, ahead = _Engine(), RolloutAhead()
    ahead.queue(broken)
    ahead.start(engine.sample)
    with pytest.raises(OSError, match="the engine is gone"):
        ahead.take()
    ahead.close()
