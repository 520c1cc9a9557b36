"""The CPU default's task: small-number addition, in the ORZ training format.

Small enough that a tiny model learns it by RL on two CPU cores, honest enough
that guessing does not pay: with operands 0..9 the answers range over 0..18 and
the best constant answer (9) is right on 10 of the 100 problems.
"""

from __future__ import annotations

import json
import random
from pathlib import Path


def addition_problems(seed: int = 0, max_operand: int = 9) -> list[tuple[str, str]]:
    """Every ``a + b`` with ``0 <= a, b <= max_operand``, as ``(question, answer)``, shuffled by ``seed``."""
    span = range(max_operand + 1)
    problems = [(f"What is {a} + {b}?", str(a + b)) for a in span for b in span]
    random.Random(seed).shuffle(problems)
    return problems


def _expression(question: str) -> str:
    return question.removeprefix("What is ").removesuffix("?")


def addition_code_problems(seed: int = 0, max_operand: int = 9) -> list[dict]:
    """The addition task as programming problems: "a program that prints a + b", one stdio test each
    (JSON Lines records of :func:`orz_rl.problems.formats.load_code_problems`)."""
    return [
        {
            "question": f"Write a program that prints the value of {_expression(q)}.",
            "stdio": [{"input": "", "output": f"{a}\n"}],
            "compare": "whitespace",
        }
        for q, a in addition_problems(seed, max_operand)
    ]


def write_code_file(path: str | Path, seed: int = 0, max_operand: int = 9) -> Path:
    """Write :func:`addition_code_problems` as a JSON Lines file of programming problems."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(p) + "\n" for p in addition_code_problems(seed, max_operand)))
    return path


def write_orz_train_file(path: str | Path, seed: int = 0, max_operand: int = 9) -> Path:
    """Write the addition problems as an ORZ training file (a JSON list of dialogues)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dialogues = [
        [
            {"from": "human", "value": question},
            {"from": "assistant", "ground_truth": {"value": answer}},
        ]
        for question, answer in addition_problems(seed, max_operand)
    ]
    path.write_text(json.dumps(dialogues, indent=1))
    return path
