"""The CPU recipes' tasks are honest: their answers vary, so guessing a constant does not pay."""

from __future__ import annotations

from collections import Counter

from orz_rl.problems.formats import load_code_problems, load_problems
from orz_rl.problems.toy_task import (
    PRODUCT_OPERANDS,
    addition_problems,
    write_code_file,
    write_orz_train_file,
)
from orz_rl.recipes.cpu_default import CPU_DEFAULT, CPU_MIXED, CPU_TOOLS
from orz_rl.rewards.code_judge import outputs_match
from orz_rl.rewards.math_answers import math_reward


def test_a_policy_that_always_writes_the_same_answer_scores_below_0_2(tmp_path):
    max_operand = CPU_DEFAULT.data.toy_max_operand
    problems = load_problems(write_orz_train_file(tmp_path / "toy.json", max_operand=max_operand))
    best = 0.0
    for constant in range(-1, 30):
        response = f" x </think> <answer> \\boxed{{{constant}}} </answer>"
        score = sum(math_reward(response, True, p.answer) for p in problems) / len(problems)
        best = max(best, score)
    assert 0 < best < 0.2


def test_answers_vary_and_are_correct_sums():
    problems = addition_problems()
    assert len({a for _, a in problems}) == 19
    assert len(addition_problems(max_operand=5)) == 36
    for question, answer in problems:
        a, b = question.removeprefix("What is ").removesuffix("?").split(" + ")
        assert int(a) + int(b) == int(answer)


def test_the_code_form_of_the_task_loads_and_a_constant_program_scores_below_0_2(tmp_path):
    max_operand = CPU_MIXED.data.toy_max_operand
    problems = load_code_problems(write_code_file(tmp_path / "code.jsonl", max_operand=max_operand))
    assert len(problems) == 36
    for problem in problems:
        expr = problem.question.removeprefix("Write a program that prints the value of ").removesuffix(".")
        a, b = map(int, expr.split(" + "))
        ((stdin, expected),) = problem.tests.stdio
        assert (stdin, expected) == ("", f"{a + b}\n")
    best = max(
        sum(outputs_match(f"{c}\n", p.tests.stdio[0][1], p.tests.compare) for p in problems) / len(problems)
        for c in range(-1, 30)
    )
    assert 0 < best < 0.2


def test_the_products_task_asks_distinct_six_digit_products_no_constant_answers(tmp_path):
    path = write_orz_train_file(tmp_path / "products.json", task=CPU_TOOLS.data.toy_task)
    problems = load_problems(path)
    assert len(problems) == 1000 and len({p.question for p in problems}) == 1000
    answers = Counter(p.answer for p in problems)
    assert max(answers.values()) <= 3  # no answer a constant guess could lean on
    for p in problems:
        a, b = map(int, p.question.removeprefix("What is ").removesuffix("?").split(" * "))
        assert a in PRODUCT_OPERANDS and b in PRODUCT_OPERANDS
        assert int(p.answer) == a * b and len(p.answer) == 6
