"""The figures papers report from n sampled responses per question.

* ``avg@n``: the mean over questions of the share of correct samples (ORZ's headline, avg@16);
* ``pass@k``: the chance that at least one of ``k`` samples drawn without replacement from the
  ``n`` is correct, by the unbiased estimator of Chen et al., 2021 ("Evaluating Large Language
  Models Trained on Code", eq. 1), ``1 - C(n - c, k) / C(n, k)`` for ``c`` correct, averaged over
  questions. With ``k = n`` it is the share of questions with any correct sample; with ``k = 1``
  it equals ``avg@n``;
* ``maj@k``: majority vote (self-consistency, Wang et al., 2022) over the answers extracted from
  the first ``k`` samples: a question counts when its most frequent answer is right. Equal
  answers pool their votes: given ``same`` (the grader's verdict on pairs of answers,
  :meth:`orz_rl.rewards.math_grader.MathGrader.equivalent`), ``0.5``, ``\\frac{1}{2}`` and ``1/2``
  are one vote (:func:`pool_answers`), which is right when any of its answers was judged right;
  without it answers are equal only as strings with whitespace removed. A sample without an
  answer casts no vote; a tie goes to the answer drawn first.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence

#: Whether each ``(a, b)`` of a batch is the same answer (``b`` in the truth's place), e.g.
#: :meth:`orz_rl.rewards.math_grader.MathGrader.equivalent`.
Same = Callable[[Sequence[tuple[str, str]]], list[bool]]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one question with ``c`` correct among ``n`` samples (``1 <= k <= n``)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    # 1 - C(n-c, k) / C(n, k) as a product, which stays exact-ish where the binomials overflow.
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def pool_questions(
    answers: Sequence[Sequence[str | None]], same: Same | None = None
) -> list[list[int | None]]:
    """The vote (cluster) of each answer of each question, by :func:`pool_answers`'s rule, with
    every question's pairs asked of ``same`` in one call (a benchmark's pairs in one batch).

    Only distinct answers (whitespace removed) are compared, each with every earlier one, so an
    answer's vote depends on the earlier answers alone: the votes of the first ``k`` answers are
    the pooling of those ``k`` (maj@k for every ``k`` from one call).
    """
    # Per question: its distinct answers in draw order as (first index, spelling drawn first).
    distinct: list[list[tuple[int, str]]] = []
    keys: list[list[int | None]] = []  # each answer's position among its question's distinct ones
    asked: dict[tuple[str, str], int] = {}
    for row in answers:
        seen: dict[str, int] = {}
        firsts: list[tuple[int, str]] = []
        row_keys: list[int | None] = []
        for i, answer in enumerate(row):
            if answer is None:
                row_keys.append(None)
                continue
            key = "".join(answer.split())
            if key not in seen:
                seen[key] = len(firsts)
                if same is not None:
                    for _, earlier in firsts:
                        asked.setdefault((answer, earlier), len(asked))
                firsts.append((i, answer))
            row_keys.append(seen[key])
        distinct.append(firsts)
        keys.append(row_keys)
    verdicts = list(same(list(asked))) if asked and same is not None else []
    if len(verdicts) != len(asked):
        raise ValueError(f"asked {len(asked)} pairs of answers but got {len(verdicts)} verdicts")

    def equal(answer: str, earlier: str) -> bool:
        at = asked.get((answer, earlier))
        return at is not None and verdicts[at]

    pooled: list[list[int | None]] = []
    for firsts, row_keys in zip(distinct, keys, strict=True):
        cluster: list[int] = []  # of each distinct answer: the first index of its vote
        for p, (i, answer) in enumerate(firsts):
            q = next((q for q in range(p) if equal(answer, firsts[q][1])), None)
            cluster.append(i if q is None else cluster[q])
        pooled.append([None if p is None else cluster[p] for p in row_keys])
    return pooled


def pool_answers(answers: Sequence[str | None], same: Same | None = None) -> list[int | None]:
    """The vote of each answer: the index of the first answer of its cluster, ``None`` for none.

    An answer joins the vote of the first earlier distinct answer it equals: equal as strings
    with whitespace removed, else (given ``same``) by ``same((answer, earlier))``, all such
    pairs asked in one call. Without ``same``, only the first rule: exact votes as strings.
    """
    return pool_questions([answers], same)[0]


def _majority(votes: Sequence[int | None], correct: Sequence[bool]) -> bool:
    """Whether the vote with the most answers holds a right one; a tie goes to the vote drawn
    first, ``None`` casts no vote."""
    counts: Counter[int] = Counter()
    right: dict[int, bool] = {}
    for vote, ok in zip(votes, correct, strict=True):
        if vote is None:
            continue
        counts[vote] += 1
        right[vote] = right.get(vote, False) or bool(ok)
    if not counts:
        return False
    return right[counts.most_common(1)[0][0]]  # most_common keeps first-seen order among ties


def majority_correct(
    answers: Sequence[str | None], correct: Sequence[bool], same: Same | None = None
) -> bool:
    """Whether the most frequent answer is a right one (``answers[i]`` was judged ``correct[i]``).

    Answers vote as pooled by :func:`pool_answers` (by ``same`` if given, else as strings with
    whitespace removed); a vote is right when any of its answers was; ``None`` casts no vote.
    """
    if len(answers) != len(correct):
        raise ValueError(f"{len(answers)} answers but {len(correct)} verdicts")
    return _majority(pool_answers(answers, same), correct)


def summarise(
    correct: Sequence[Sequence[bool]],
    pass_k: Sequence[int],
    maj_k: Sequence[int] = (),
    answers: Sequence[Sequence[str | None]] | None = None,
    same: Same | None = None,
) -> dict[str, float]:
    """``avg@n``, ``pass@k`` for each of ``pass_k`` and ``maj@k`` for each of ``maj_k`` (which
    needs ``answers``) over questions, each with its ``n`` verdicts in ``correct``.

    maj@k pools equal answers by ``same`` (see :func:`pool_answers`), asked once for all
    questions and every ``k``."""
    if not correct:
        return {}
    n = len(correct[0])
    if any(len(row) != n for row in correct):
        raise ValueError("every question needs the same number of samples")
    out = {f"avg@{n}": sum(sum(row) / n for row in correct) / len(correct)}
    for k in pass_k:
        out[f"pass@{k}"] = sum(pass_at_k(n, sum(row), k) for row in correct) / len(correct)
    if not maj_k:
        return out
    if answers is None:
        raise ValueError("maj@k needs the extracted answers")
    for k in maj_k:
        if not 1 <= k <= n:
            raise ValueError(f"maj@{k} needs 1 <= k <= n = {n}")
    if len(answers) != len(correct):
        raise ValueError(f"{len(answers)} questions' answers but {len(correct)} questions' verdicts")
    votes = pool_questions(answers, same)
    for k in maj_k:
        rows = zip(votes, correct, strict=True)
        out[f"maj@{k}"] = sum(_majority(v[:k], c[:k]) for v, c in rows) / len(correct)
    return out
