"""The CPU recipes' tasks, in the ORZ training format.

Addition (the CPU default): small enough that a tiny model learns it by RL on two
CPU cores, honest enough that guessing does not pay: with operands 0..9 the answers
range over 0..18 and the best constant answer (9) is right on 10 of the 100 problems.

Products of two 3-digit numbers (``cpu-tools``): beyond a tiny model unaided (466,489
products of six digits), and one line of Python with a tool.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Literal


def addition_problems(seed: int = 0, max_operand: int = 9) -> list[tuple[str, str]]:
    """Every ``a + b`` with ``0 <= a, b <= max_operand``, as ``(question, answer)``, shuffled by ``seed``."""
    span = range(max_operand + 1)
    problems = [(f"What is {a} + {b}?", str(a + b)) for a in span for b in span]
    random.Random(seed).shuffle(problems)
    return problems


#: The operands of the products: from 317 (317 * 317 > 10**5) every product has six digits, so a
#: tiny model copies a tool's output at one fixed offset.
PRODUCT_OPERANDS = range(317, 1000)


def product_problems(seed: int = 0, count: int = 1000) -> list[tuple[str, str]]:
    """``count`` distinct products ``a * b`` of :data:`PRODUCT_OPERANDS`, as ``(question, answer)``."""
    rng = random.Random(seed)
    pairs: dict[tuple[int, int], None] = {}
    while len(pairs) < count:
        pairs[rng.choice(PRODUCT_OPERANDS), rng.choice(PRODUCT_OPERANDS)] = None
    return [(f"What is {a} * {b}?", str(a * b)) for a, b in pairs]


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


def write_orz_train_file(
    path: str | Path, seed: int = 0, max_operand: int = 9, task: Literal["addition", "products"] = "addition"
) -> Path:
    """Write the addition problems (or with ``task="products"``, :func:`product_problems`) as an
    ORZ training file (a JSON list of dialogues)."""
    problems = addition_problems(seed, max_operand) if task == "addition" else product_problems(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dialogues = [
        [
            {"from": "human", "value": question},
            {"from": "assistant", "ground_truth": {"value": answer}},
        ]
        for question, answer in problems
    ]
    path.write_text(json.dumps(dialogues, indent=1))
    return path
