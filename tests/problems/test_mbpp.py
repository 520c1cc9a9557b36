"""MBPP in both published releases: loaded as is, each reference solution passes, a wrong one fails.

MBPP is not shipped (CC BY 4.0, and no copy here), so these items are written in its shape: a
set comparison of a tuple result, a float test through ``math`` from ``test_setup_code``, a
string, and the sanitized release's ``prompt`` / ``test_imports``.
"""

from __future__ import annotations

import json

import pytest

from orz_rl.config import SandboxConfig
from orz_rl.problems.formats import DatasetFormatError, load_code_problems
from orz_rl.rewards.code_judge import CodeJudge
from orz_rl.rewards.sandbox import Sandbox
from tests.sandbox_helpers import ISOLATIONS

ORIGINAL = [
    {
        "task_id": 2,
        "text": "Write a function to find the similar elements from the given two tuple lists.",
        "code": "def similar_elements(a, b):\r\n  res = tuple(set(a) & set(b))\r\n  return (res) ",
        "test_list": [
            "assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))",
            "assert set(similar_elements((1, 2, 3, 4),(5, 4, 3, 7))) == set((3, 4))",
        ],
        "test_setup_code": "",
        "challenge_test_list": [],
    },
    {
        "task_id": 900,
        "text": "Write a function to compute the area of a circle.",
        "code": "import math\ndef circle_area(r):\n    return math.pi * r * r",
        "test_list": ["assert isclose(circle_area(2), 12.566370614359172)", "assert circle_area(0) == 0.0"],
        "test_setup_code": "from math import isclose",
        "challenge_test_list": ["assert circle_area(float('inf')) == float('inf')"],
    },
]
SANITIZED = {
    "source_file": "Benchmark Questions Verification V2.ipynb",
    "task_id": 11,
    "prompt": "Write a python function to remove first and last occurrence of a given character.",
    "code": (
        "def remove_Occ(s, ch):\n    i = s.find(ch)\n    if i >= 0:\n        s = s[:i] + s[i + 1 :]\n"
        "    j = s.rfind(ch)\n    if j >= 0:\n        s = s[:j] + s[j + 1 :]\n    return s\n"
    ),
    "test_imports": [],
    "test_list": ['assert remove_Occ("hello","l") == "heo"', 'assert remove_Occ("abcda","a") == "bcd"'],
}
WRONG = {
    2: "def similar_elements(a, b):\n    return a",
    900: "def circle_area(r):\n    return 3.14 * r * r",
    11: "def remove_Occ(s, ch):\n    return s[1:]",
}


@pytest.fixture
def mbpp_file(tmp_path):
    path = tmp_path / "mbpp.jsonl"
    path.write_text("\n".join(json.dumps(i) for i in (*ORIGINAL, SANITIZED)) + "\n")
    return path


def test_both_releases_load_with_the_tested_function_and_the_paper_s_prompt(mbpp_file):
    similar, circle, remove = load_code_problems(mbpp_file)
    assert (similar.tests.entry_point, circle.tests.entry_point, remove.tests.entry_point) == (
        "similar_elements",
        "circle_area",
        "remove_Occ",
    )
    assert circle.tests.setup == "from math import isclose" and len(circle.tests.asserts) == 2
    assert similar.question.startswith("You are an expert Python programmer, and here is your task: Write")
    assert "Your code should pass these tests:\n\nassert set(similar_elements(" in similar.question


def test_each_reference_solution_passes_and_a_wrong_one_fails(mbpp_file):
    if not ISOLATIONS:
        pytest.fail(
            "no sandbox isolation (unshare as root, or bwrap) on this machine: `make setup` adds bwrap"
        )
    problems = load_code_problems(mbpp_file)
    items = [*ORIGINAL, SANITIZED]
    with Sandbox(SandboxConfig(isolation=ISOLATIONS[0], workers=2), announce=False) as sandbox:
        judge = CodeJudge(sandbox)
        programs = [i["code"] for i in items] + [WRONG[i["task_id"]] for i in items]
        answers = [f"</think> <answer> ```python\n{p}\n``` </answer>" for p in programs]
        tests = [p.tests for p in problems] * 2
        assert judge.score(answers, [True] * 6, tests).tolist() == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
        judge.close()


def test_an_mbpp_item_whose_test_calls_nothing_names_the_line(tmp_path):
    bad = tmp_path / "mbpp.jsonl"
    bad.write_text(json.dumps(dict(ORIGINAL[0], test_list=["assert True"])) + "\n")
    with pytest.raises(
        DatasetFormatError, match=r"mbpp\.jsonl:1: malformed programming problem .*no function call"
    ):
        load_code_problems(bad)
