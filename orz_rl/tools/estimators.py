"""The figures papers report from n sampled responses per question.

* ``avg@n``: the mean over questions of the share of correct samples (ORZ's headline, avg@16);
* ``pass@k``: the chance that at least one of ``k`` samples drawn without replacement from the
  ``n`` is correct, by the unbiased estimator of Chen et al., 2021 ("Evaluating Large Language
  Models Trained on Code", eq. 1), ``1 - C(n - c, k) / C(n, k)`` for ``c`` correct, averaged over
  questions. With ``k = n`` it is the share of questions with any correct sample; with ``k = 1``
  it equals ``avg@n``;
* ``maj@k``: majority vote (self-consistency, Wang et al., 2022) over the answers extracted from
  the first ``k`` samples: a question counts when its most frequent answer is right. A sample
  without an answer casts no vote; a tie goes to the answer drawn first.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one question with ``c`` correct among ``n`` samples (``1 <= k <= n``)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    # 1 - C(n-c, k) / C(n, k) as a product, which stays exact-ish where the binomials overflow.
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def majority_correct(answers: Sequence[str | None], correct: Sequence[bool]) -> bool:
    """Whether the most frequent answer is a right one (``answers[i]`` was judged ``correct[i]``).

    Answers are compared as strings with whitespace removed; ``None`` (no answer) casts no vote.
    """
    if len(answers) != len(correct):
        raise ValueError(f"{len(answers)} answers but {len(correct)} verdicts")
    votes: Counter[str] = Counter()
    verdict: dict[str, bool] = {}
    for answer, right in zip(answers, correct, strict=True):
        if answer is None:
            continue
        key = "".join(answer.split())
        votes[key] += 1
        verdict[key] = verdict.get(key, False) or right
    if not votes:
        return False
    return verdict[votes.most_common(1)[0][0]]  # most_common keeps first-seen order among ties


def summarise(
    correct: Sequence[Sequence[bool]],
    pass_k: Sequence[int],
    maj_k: Sequence[int] = (),
    answers: Sequence[Sequence[str | None]] | None = None,
) -> dict[str, float]:
    """``avg@n``, ``pass@k`` for each of ``pass_k`` and ``maj@k`` for each of ``maj_k`` (which
    needs ``answers``) over questions, each with its ``n`` verdicts in ``correct``."""
    if not correct:
        return {}
    n = len(correct[0])
    if any(len(row) != n for row in correct):
        raise ValueError("every question needs the same number of samples")
    out = {f"avg@{n}": sum(sum(row) / n for row in correct) / len(correct)}
    for k in pass_k:
        out[f"pass@{k}"] = sum(pass_at_k(n, sum(row), k) for row in correct) / len(correct)
    if maj_k and answers is None:
        raise ValueError("maj@k needs the extracted answers")
    for k in maj_k:
        if not 1 <= k <= n:
            raise ValueError(f"maj@{k} needs 1 <= k <= n = {n}")
        rows = zip(answers or (), correct, strict=True)
        out[f"maj@{k}"] = sum(majority_correct(a[:k], c[:k]) for a, c in rows) / len(correct)
    return out
