"""The batch math reward: real worker processes, real hostile strings, bounded time."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from orz_rl.rewards.math_answers import quick_verdict
from orz_rl.rewards.math_grader import MAX_ANSWER_CHARS, STAT_NAMES, WARM_UP_CHECKS, MathGrader, warm_up

LIMIT = 2.0


def box(answer: str) -> str:
    return f" reasoning </think> <answer> \\boxed{{{answer}}} </answer>"


@pytest.fixture(scope="module")
def grader():
    with MathGrader(workers=2, timeout=LIMIT) as g:
        assert g.score([box("\\frac{1}{2}")], [True], ["0.5"]).tolist() == [1.0]  # workers up
        yield g


HOSTILE = {
    "power tower": box("9^{9^{9^{9}}}"),
    "10,000 nested braces": box("{" * 10_000 + "5" + "}" * 10_000),
    "5 MB answer": box("5" * 5_000_000),
    "unbalanced braces": " x </think> <answer> \\boxed{{5} </answer>",
    "NUL bytes": box("5\x00\x00"),
    "lone surrogates": box("\ud800 5 \udfff"),
    "LaTeX macro bomb": box("\\def\\a{\\a\\a}\\a \\newcommand{\\b}{\\b\\b}\\b 5"),
    "a million answer blocks never closed": "<answer> \\boxed{5}" * 1_000_000,
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_answer_scores_zero_within_the_limit_and_the_pool_survives(grader, name):
    start = time.monotonic()
    reward = grader.score([HOSTILE[name]], [True], ["5"])
    assert time.monotonic() - start < LIMIT + 1.0
    assert reward.tolist() == [0.0]
    # the pool still grades, right and wrong
    after = grader.score([box("5"), box("\\frac{10}{2}"), box("6")], [True] * 3, ["5"] * 3)
    assert after.tolist() == [1, 1, 0]


def test_a_check_past_the_limit_is_counted_as_a_timeout(grader):
    reward = grader.score([box("9^{9^{9^{9}}}"), box("2")], [True, True], ["5", "2"])
    assert reward.tolist() == [0.0, 1.0]
    assert grader.last_stats["timeouts"] == 1


def test_workers_killed_mid_check_are_a_counted_failure_and_are_replaced(grader):
    def kill_every_worker():  # the busy one and the idle one, as an OOM killer might
        time.sleep(0.5)
        for pid in grader.worker_pids():
            os.kill(pid, signal.SIGKILL)

    for _ in range(3):
        killer = threading.Thread(target=kill_every_worker)
        killer.start()
        reward = grader.score([box("9^{9^{9^{9}}}")], [True], ["5"])
        killer.join()
        assert reward.tolist() == [0.0]
        assert grader.last_stats["failures"] == 1, dict(grader.last_stats)
        after = grader.score([box("\\sqrt{4}"), box("3")], [True, True], ["2", "2"])
        assert after.tolist() == [1.0, 0.0]


def test_rewards_stay_aligned_and_identical_pairs_are_checked_once(grader):
    responses = [box("\\frac{1}{2}"), box("0.5"), box("\\frac{1}{2}"), box("1/3"), "no box", box("1/2")]
    stopped = [True, True, True, True, True, False]
    reward = grader.score(responses, stopped, ["0.5"] * 6)
    assert reward.tolist() == [1, 1, 1, 0, 0, 0]
    stats = grader.last_stats
    assert set(stats) == set(STAT_NAMES)
    assert stats["quick"] == 1  # "0.5" against "0.5"
    assert stats["checked"] == 2  # \frac{1}{2} (twice, checked once) and 1/3
    assert stats["no_answer"] == 1 and stats["cut"] == 1


def test_equivalence_is_aligned_checks_identical_pairs_once_and_counts_like_score(grader):
    pairs = [
        ("\\frac{1}{2}", "0.5"),
        ("0.50", ".5"),  # plain numbers: decided here
        ("\\frac{1}{2}", "0.5"),  # the same pair again: checked once
        ("1/3", "0.5"),
        ("5" * (MAX_ANSWER_CHARS + 1), "5"),
        ("5", "5\x00"),  # malformed on either side
        ("9^{9^{9^{9}}}", "1"),
    ]
    start = time.monotonic()
    assert grader.equivalent(pairs) == [True, True, True, False, False, False, False]
    assert time.monotonic() - start < LIMIT + 1.0
    stats = grader.last_stats
    assert set(stats) == set(STAT_NAMES)
    assert stats["checked"] == 3  # \frac{1}{2} ~ 0.5, 1/3 ~ 0.5, the power tower
    assert stats["quick"] == 1 and stats["timeouts"] == 1
    assert stats["oversized"] == 1 and stats["malformed"] == 1
    assert grader.equivalent([]) == [] and grader.last_stats["checked"] == 0


def test_an_answer_over_the_length_cap_is_wrong_without_a_check(grader):
    reward = grader.score([box("1" * (MAX_ANSWER_CHARS + 1))], [True], ["1" * (MAX_ANSWER_CHARS + 1)])
    assert reward.tolist() == [0.0]
    assert grader.last_stats["oversized"] == 1


def test_the_warm_up_runs_the_symbolic_checker_and_gets_its_verdicts():
    # Pairs decided without math-verify would warm nothing; a wrong verdict would mean the
    # worker's checker is broken before the first batch.
    assert all(quick_verdict(answer, truth, ()) is None for answer, truth, _ in WARM_UP_CHECKS)
    assert {verdict for *_, verdict in WARM_UP_CHECKS} == {True, False}
    assert warm_up()
