"""pass@k (unbiased), maj@k and avg@n against values computed by hand."""

from __future__ import annotations

from fractions import Fraction
from math import comb

import pytest

from orz_rl.tools.estimators import majority_correct, pass_at_k, summarise


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
