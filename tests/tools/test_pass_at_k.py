"""pass@k (unbiased), maj@k and avg@n against values computed by hand; maj@k's pooling of equal
answers by the real grader (worker processes, time limit)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from fractions import Fraction
from math import comb

import pytest

from orz_rl.rewards.math_grader import MathGrader
from orz_rl.tools.pass_at_k import majority_correct, pass_at_k, pool_answers, pool_questions, summarise

LIMIT = 2.0


@pytest.fixture(scope="module")
def grader():
    with MathGrader(workers=2, timeout=LIMIT) as g:
        assert g.equivalent([("\\frac{1}{2}", "0.5")]) == [True]  # workers up
        yield g


class Recorder:
    """The grader's ``equivalent``, with each batch it was asked kept."""

    def __init__(self, grader: MathGrader) -> None:
        self.grader = grader
        self.batches: list[list[tuple[str, str]]] = []

    def __call__(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        self.batches.append(list(pairs))
        return self.grader.equivalent(pairs)


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (4, 1, 2, 1 - 3 / 6),  # 1 - C(3,2)/C(4,2)
        (5, 2, 3, 1 - 1 / 10),  # 1 - C(3,3)/C(5,3)
        (16, 3, 1, 3 / 16),  # pass@1 is the share right
        (4, 0, 4, 0.0),
        (4, 1, 4, 1.0),  # k = n: any right
        (4, 3, 2, 1.0),  # fewer wrong than k: a draw of k always holds a right one
    ],
)
def test_pass_at_k_is_one_minus_the_chance_that_k_draws_are_all_wrong(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_matches_the_exact_binomial_ratio_where_the_binomials_are_huge():
    n, c, k = 200, 7, 100
    exact = 1 - Fraction(comb(n - c, k), comb(n, k))
    assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-12)


@pytest.mark.parametrize(("n", "c", "k"), [(4, 1, 0), (4, 1, 5), (4, 5, 1), (4, -1, 1)])
def test_pass_at_k_refuses_impossible_counts(n, c, k):
    with pytest.raises(ValueError, match=f"n={n}, c={c}, k={k}"):
        pass_at_k(n, c, k)


def test_majority_vote_counts_answers_without_whitespace_and_ignores_missing_ones():
    assert majority_correct(["1/2", "3", "1 / 2", None, None, None], [True, False, True, False, False, False])
    assert not majority_correct(["3", "1/2", "3"], [False, True, False])
    assert not majority_correct([None, None], [False, False])


def test_a_tied_vote_goes_to_the_answer_drawn_first():
    assert majority_correct(["7", "8"], [True, False])
    assert not majority_correct(["8", "7"], [False, True])


def test_summarise_reports_avg_pass_and_maj_over_questions():
    correct = [[True, False, False, False], [True, True, False, True], [False] * 4]
    answers = [["7", "8", "8", None], ["5", "5", "6", "5"], [None] * 4]
    out = summarise(correct, pass_k=(1, 2, 4), maj_k=(1, 4), answers=answers)
    assert out == pytest.approx(
        {
            "avg@4": (1 / 4 + 3 / 4 + 0) / 3,
            "pass@1": (1 / 4 + 3 / 4 + 0) / 3,
            "pass@2": (1 / 2 + 1 + 0) / 3,
            "pass@4": 2 / 3,
            "maj@1": 2 / 3,  # "7" right, "5" right, no answer
            "maj@4": 1 / 3,  # "8" (wrong) outvotes "7"
        }
    )


def test_summarise_refuses_ragged_tables_and_maj_without_answers():
    with pytest.raises(ValueError, match="same number of samples"):
        summarise([[True], [True, False]], pass_k=(1,))
    with pytest.raises(ValueError, match="needs the extracted answers"):
        summarise([[True]], pass_k=(1,), maj_k=(1,))
    with pytest.raises(ValueError, match="maj@2 needs 1 <= k <= n = 1"):
        summarise([[True]], pass_k=(), maj_k=(2,), answers=[["1"]])


def test_equal_answers_pool_their_votes_and_outvote_a_repeated_wrong_one(grader):
    answers = ["3", "0.5", "\\frac{1}{2}", "3", "1/2"]
    correct = [False, True, True, False, True]
    assert pool_answers(answers, grader.equivalent) == [0, 1, 1, 0, 1]
    assert majority_correct(answers, correct, same=grader.equivalent)
    assert not majority_correct(answers, correct)  # as strings, "3" has two votes to one each


def test_without_same_answers_vote_as_strings_without_whitespace():
    assert pool_answers(["1/2", "0.5", "1 / 2", None, "0.5"]) == [0, 1, 0, None, 1]


def test_a_pooled_vote_is_right_when_any_of_its_answers_was_judged_right(grader):
    # The grader pools "2" and "\sqrt{4}"; only "2" was judged right (against its truth).
    assert majority_correct(["\\sqrt{4}", "2", "5"], [False, True, False], same=grader.equivalent)
    assert not majority_correct(["\\sqrt{4}", "2", "5"], [False, True, False])  # a three-way tie


def test_a_tie_between_pooled_votes_goes_to_the_vote_drawn_first(grader):
    same = grader.equivalent
    assert majority_correct(["\\frac{1}{2}", "3", "0.5", "3"], [True, False, True, False], same=same)
    assert not majority_correct(["3", "\\frac{1}{2}", "3", "0.5"], [False, True, False, True], same=same)


def test_a_missing_answer_casts_no_vote_and_is_never_compared(grader):
    same = Recorder(grader)
    assert pool_answers([None, "3", None, "\\frac{6}{2}", None], same) == [None, 1, None, 1, None]
    assert same.batches == [[("\\frac{6}{2}", "3")]]
    assert not majority_correct([None, None, "4"], [True, True, False], same=same)


def test_only_distinct_answers_are_compared_and_exact_repeats_need_no_call(grader):
    same = Recorder(grader)
    assert pool_answers(["7", " 7", "7 "], same) == [0, 0, 0]
    assert same.batches == []


def test_a_hostile_answer_is_not_equal_is_counted_and_does_not_hang(grader):
    start = time.monotonic()
    assert pool_answers(["1", "9^{9^{9^{9}}}", "1"], grader.equivalent) == [0, 1, 0]
    assert time.monotonic() - start < LIMIT + 1.0
    assert grader.last_stats["timeouts"] == 1
    assert grader.equivalent([("\\sqrt{1}", "1")]) == [True]  # the pool still grades


def test_a_benchmark_is_pooled_in_one_call_and_each_maj_k_votes_over_its_prefix(grader):
    same = Recorder(grader)
    answers = [["3", "0.5", "\\frac{1}{2}", "3"], ["x^2", "4", "2^2", "4"], [None] * 4]
    correct = [[False, True, True, False], [False, True, True, True], [False] * 4]
    out = summarise(correct, pass_k=(), maj_k=(1, 2, 3, 4), answers=answers, same=same)
    assert len(same.batches) == 1
    assert out == pytest.approx(
        {
            "avg@4": (2 / 4 + 3 / 4 + 0) / 3,
            "maj@1": 0.0,  # "3", "x^2", nothing
            "maj@2": 0.0,  # ties go to "3" and "x^2"
            "maj@3": 2 / 3,  # {0.5, 1/2} and {4, 2^2} have two votes each
            "maj@4": 1 / 3,  # "3" ties {0.5, 1/2} and was drawn first; {4, 2^2} has three
        }
    )
    assert pool_questions(answers, grader.equivalent) == [[0, 1, 1, 0], [0, 1, 1, 1], [None] * 4]
    # As strings: "3" outvotes each spelling of 1/2; "4" still wins the second question.
    assert summarise(correct, (), (4,), answers)["maj@4"] == pytest.approx(1 / 3)
