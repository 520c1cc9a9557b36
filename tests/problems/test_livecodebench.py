"""LiveCodeBench's test-case fields: JSON, its pickled encoding, and crafted files refused unrun."""

from __future__ import annotations

import base64
import json
import os
import pickle
import zlib

import pytest

from orz_rl.problems import livecodebench
from orz_rl.problems.formats import DatasetFormatError, load_code_problems
from orz_rl.problems.livecodebench import UnsafeTestCasesError, decode_test_cases, lcb_problem

CASES = [
    {"input": "3 4\n", "output": "7\n", "testtype": "stdin"},
    {"input": "[1, 2]\n3", "output": "[1, 2, 3]", "testtype": "functional"},
]


def lcb_encoding(payload: object, protocol: int = pickle.DEFAULT_PROTOCOL) -> str:
    """How LiveCodeBench stores ``private_test_cases``: base64(zlib(pickle(...)))."""
    return base64.b64encode(zlib.compress(pickle.dumps(payload, protocol=protocol))).decode()


def test_json_test_cases_are_read_as_they_are():
    assert decode_test_cases(json.dumps(CASES), "lcb.jsonl: item 1") == CASES


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_the_pickled_encoding_of_a_json_string_is_read_at_every_protocol(protocol):
    assert decode_test_cases(lcb_encoding(json.dumps(CASES), protocol), "lcb.jsonl: item 1") == CASES


class _RunsAShellCommand:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_pickle_is_refused_naming_the_file_and_item_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    crafted = lcb_encoding(_RunsAShellCommand(str(marker)))
    with pytest.raises(UnsafeTestCasesError, match=r"lcb\.jsonl: item 7: .*names posix\.system; refused"):
        decode_test_cases(crafted, "lcb.jsonl: item 7")
    assert not marker.exists()
    # The same payload inside a container, and a class (no call) are refused too.
    for payload in ([json.dumps(CASES), _RunsAShellCommand(str(marker))], zlib.decompressobj):
        with pytest.raises(UnsafeTestCasesError, match="refused"):
            decode_test_cases(lcb_encoding(payload), "lcb.jsonl: item 7")
    assert not marker.exists()


def test_a_blob_that_inflates_past_the_cap_is_refused(monkeypatch):
    monkeypatch.setattr(livecodebench, "MAX_DECOMPRESSED_BYTES", 1000)
    big = lcb_encoding(json.dumps([{"input": "x" * 5000, "output": "", "testtype": "stdin"}]))
    with pytest.raises(UnsafeTestCasesError, match="inflates past 1000 bytes"):
        decode_test_cases(big, "lcb.jsonl: item 2")


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("not json, not base64!", "neither JSON nor base64"),
        (base64.b64encode(b"plain bytes").decode(), "not zlib data"),
        (base64.b64encode(zlib.compress(b"\x80\x05garbage")).decode(), "not a readable pickle"),
        (lcb_encoding(12), "are a int, not a JSON string"),
        (lcb_encoding("{not json"), "unpickled test cases are not JSON"),
        (json.dumps({"input": "1"}), "must be a JSON list, not dict"),
        (json.dumps([{"input": "1", "output": "2"}]), "test case 0 must be"),
        (json.dumps([{"input": "1", "output": 2, "testtype": "stdin"}]), "test case 0 must be"),
    ],
)
def test_a_malformed_field_is_one_error_naming_the_item(field, message):
    with pytest.raises(ValueError, match=f"lcb.jsonl: item 3: .*{message}"):
        decode_test_cases(field, "lcb.jsonl: item 3")


# --- whole problems in code_generation_lite's format, judged -------------------------------------


def lcb_item(cases: list[dict], private: list[dict], func_name: str | None = None, **extra) -> dict:
    metadata = json.dumps({"func_name": func_name} if func_name else {})
    return {
        "question_title": "t",
        "question_content": "Solve it.",
        "platform": "leetcode" if func_name else "atcoder",
        "question_id": "1",
        "contest_id": "c",
        "contest_date": "2024-08-03T00:00:00",
        "starter_code": f"class Solution:\n    def {func_name}(self, nums, target):\n        "
        if func_name
        else "",
        "difficulty": "easy",
        "public_test_cases": json.dumps(cases),
        "private_test_cases": lcb_encoding(json.dumps(private)),
        "metadata": metadata,
        **extra,
    }


STDIN = lcb_item(
    [{"input": "3 4\n", "output": "7\n", "testtype": "stdin"}],
    [
        {"input": "1.5 1.5\n", "output": "3\n", "testtype": "stdin"},
        {"input": "2 2", "output": "4", "testtype": "stdin"},
    ],
)
FUNCTIONAL = lcb_item(
    [{"input": "[2, 7, 11, 15]\n9", "output": "[0, 1]", "testtype": "functional"}],
    [{"input": "[3, 2, 4]\n6", "output": "[1, 2]", "testtype": "functional"}],
    func_name="twoSum",
)
TWO_SUM = (
    "class Solution:\n    def twoSum(self, nums, target):\n        seen = {}\n"
    "        for i, x in enumerate(nums):\n            if target - x in seen:\n"
    "                return (seen[target - x], i)\n            seen[x] = i\n"
)


@pytest.fixture(scope="module")
def judge():
    from orz_rl.config import SandboxConfig
    from orz_rl.rewards.code_judge import CodeJudge
    from orz_rl.rewards.sandbox import Sandbox
    from tests.sandbox_helpers import ISOLATIONS

    if not ISOLATIONS:
        pytest.fail(
            "no sandbox isolation (unshare as root, or bwrap) on this machine: `make setup` adds bwrap"
        )
    with Sandbox(SandboxConfig(isolation=ISOLATIONS[0], timeout=5, workers=2), announce=False) as sandbox:
        code_judge = CodeJudge(sandbox)
        yield code_judge
        code_judge.close()


def _verdicts(judge, problem, programs: list[str]) -> list[float]:
    answers = [f"</think> <answer> ```python\n{p}\n``` </answer>" for p in programs]
    return judge.score(answers, [True] * len(programs), [problem.tests] * len(programs)).tolist()


def test_a_file_of_both_kinds_loads_with_public_and_private_tests(tmp_path):
    path = tmp_path / "lcb.jsonl"
    path.write_text("\n".join(json.dumps(i) for i in (STDIN, FUNCTIONAL)))
    stdin, functional = load_code_problems(path)
    assert len(stdin.tests.stdio) == 3 and stdin.tests.compare == "lcb"
    assert (
        functional.tests.calls[1] == ("[3, 2, 4]\n6", "[1, 2]") and functional.tests.entry_point == "twoSum"
    )
    assert "from heapq import *" in stdin.tests.prelude  # what LiveCodeBench puts before a program
    assert (functional.groups, functional.date) == ((("difficulty", "easy"),), "2024-08-03T00:00:00")
    assert stdin.tests.time_limit == functional.tests.time_limit == 6.0  # LiveCodeBench's, per test
    assert "```python\nclass Solution:" in functional.question and "STDOUT" in stdin.question


def test_stdin_problems_pass_right_programs_by_livecodebench_s_comparison(judge, tmp_path):
    problem = lcb_problem(STDIN)
    right = "a, b = map(float, input().split())\ns = a + b\nprint(int(s) if s == int(s) else s)"
    as_floats = "a, b = map(float, input().split())\nprint(f'  {a + b:.1f}  ')\nprint()"  # 7.0 counts as 7
    wrong = "a, b = map(float, input().split())\nprint(a * b)"
    assert _verdicts(judge, problem, [right, as_floats, wrong]) == [1.0, 1.0, 0.0]


def test_functional_problems_call_solution_with_json_arguments(judge):
    problem = lcb_problem(FUNCTIONAL)
    wrong = TWO_SUM.replace("(seen[target - x], i)", "[i, seen[target - x]]")
    bare = "def twoSum(nums, target):\n    return [0, 1]"  # right on the public test only
    # The prelude's names, unimported, as LiveCodeBench's solutions use them (defaultdict).
    prelude = (
        "class Solution:\n    def twoSum(self, nums, target):\n        seen = defaultdict(list)\n"
        "        for i, x in enumerate(nums):\n            if seen[target - x]:\n"
        "                return [seen[target - x][0], i]\n            seen[x].append(i)\n"
    )
    assert _verdicts(judge, problem, [TWO_SUM, wrong, bare, prelude]) == [1.0, 0.0, 0.0, 1.0]
    assert judge.last_stats["wrong_answer"] == 2


def test_a_crafted_pickle_in_a_file_is_refused_naming_the_file_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    item = dict(STDIN, private_test_cases=lcb_encoding(_RunsAShellCommand(str(marker))))
    path = tmp_path / "lcb.jsonl"
    path.write_text(json.dumps(STDIN) + "\n" + json.dumps(item) + "\n")
    with pytest.raises(DatasetFormatError, match=r"lcb\.jsonl:2: .*names (posix|os)\.system; refused"):
        load_code_problems(path)
    assert not marker.exists()
