"""The math reward's agreement with a careful grader on answer forms written apart from its rules.

Each table in ``data/`` is ``{"predicted", "truth", "same", "family", "why"}`` pairs written by a
separate author who saw neither ``math_answers.py``, ``answer_spelling.py`` nor their tests;
``same`` is a careful human grader's verdict. How each was used:

* ``math_forms_dev_1.jsonl`` (170 pairs, varied forms) was first scored unseen (96.5 %; math-verify
  alone 91.8 %), then its misses guided the rules: a development table now.
* ``math_forms_dev_2.jsonl`` (155 pairs, rare notations by design) was first scored unseen
  (80.6 %; math-verify alone 72.3 %), then its misses guided the rules: a development table now.
* ``math_forms_heldout.jsonl`` (152 pairs on real MATH500 and AIME truths, forms weighted by how
  often models write them) was written after the rules and scored once: the held-out figure.

The rules' own cases are ``test_math_answers.py``'s table.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orz_rl.rewards.math_answers import answers_match

DATA = Path(__file__).parent / "data"
TABLES = ("math_forms_heldout.jsonl", "math_forms_dev_1.jsonl", "math_forms_dev_2.jsonl")


def math_verify_alone(predicted: str, truth: str) -> bool:
    from math_verify import parse, verify

    try:
        gold, pred = parse(f"${truth}$"), parse(f"${predicted}$")
        return bool(gold) and bool(pred) and bool(verify(gold, pred))
    except Exception:
        return False


def agreement(rows: list[dict], grader) -> float:
    return sum(grader(r["predicted"], r["truth"]) == r["same"] for r in rows) / len(rows)


@pytest.mark.parametrize("name", TABLES)
def test_the_reward_agrees_with_a_careful_grader_on_at_least_97_percent(name):
    rows = [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]
    assert len(rows) >= 150 and len({r["family"] for r in rows}) >= 12
    ours, alone = agreement(rows, answers_match), agreement(rows, math_verify_alone)
    missed = [
        (r["predicted"], r["truth"], r["same"])
        for r in rows
        if answers_match(r["predicted"], r["truth"]) != r["same"]
    ]
    print(f"{name}: {len(rows)} pairs, orz-rl {100 * ours:.1f} %, math-verify alone {100 * alone:.1f} %")
    assert ours >= 0.97, f"{100 * ours:.1f} % < 97 % on {name}; missed {missed}"
