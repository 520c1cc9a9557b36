"""HumanEval as published: every reference solution passes the judge, every empty one fails."""

from __future__ import annotations

import gzip
import json

import pytest

from orz_rl.config import SandboxConfig
from orz_rl.problems.benchmarks import resolve_benchmark
from orz_rl.problems.formats import DatasetFormatError, load_code_problems
from orz_rl.problems.humaneval import HUMANEVAL_FILE, reference_program
from orz_rl.rewards.code_judge import CodeJudge
from orz_rl.rewards.sandbox import Sandbox
from tests.sandbox_helpers import ISOLATIONS, sandbox_processes


def _items() -> list[dict]:
    return [json.loads(line) for line in gzip.decompress(HUMANEVAL_FILE.read_bytes()).splitlines()]


def _answer(program: str) -> str:
    return f"Done. </think> <answer> ```python\n{program}\n``` </answer>"


def test_the_shipped_set_loads_by_name_as_164_problems_with_prompt_helpers_in_the_prelude():
    name, path = resolve_benchmark("humaneval")
    problems = load_code_problems(path)
    assert (name, len(problems)) == ("humaneval", 164)
    poly = problems[32].tests
    assert poly.entry_point == "find_zero" and "def poly(" in poly.prelude
    assert poly.asserts == ("check(find_zero)",) and "def check(candidate)" in poly.setup
    assert problems[32].question.startswith("Please provide a self-contained Python script")
    assert problems[32].source.endswith("item 33")
    assert poly.time_limit == 3.0  # HumanEval's own limit for a problem's check


def test_every_reference_solution_passes_and_every_empty_body_fails():
    """The whole set through the judge ``orz-rl eval`` uses: 164 x 2 judged programs."""
    if not ISOLATIONS:
        pytest.fail(
            "no sandbox isolation (unshare as root, or bwrap) on this machine: `make setup` adds bwrap"
        )
    items = _items()
    problems = load_code_problems(HUMANEVAL_FILE)
    tests = [p.tests for p in problems]
    with Sandbox(SandboxConfig(isolation=ISOLATIONS[0], workers=2), announce=False) as sandbox:
        judge = CodeJudge(sandbox)
        right = judge.score([_answer(reference_program(i)) for i in items], [True] * 164, tests)
        failed = [items[k]["task_id"] for k in (right == 0).nonzero().flatten().tolist()]
        assert not failed, f"reference solutions judged wrong: {failed} ({dict(judge.last_stats)})"
        empty = [_answer(i["prompt"] + "    return None\n") for i in items]
        wrong = judge.score(empty, [True] * 164, tests)
        passed = [items[k]["task_id"] for k in wrong.nonzero().flatten().tolist()]
        assert not passed, f"`return None` bodies judged right: {passed}"
        judge.close()
    assert not sandbox_processes()


def test_a_damaged_gzip_is_one_error_naming_the_file(tmp_path):
    bad = tmp_path / "HumanEval.jsonl.gz"
    bad.write_bytes(HUMANEVAL_FILE.read_bytes()[:500])
    with pytest.raises(DatasetFormatError, match="HumanEval.jsonl.gz: not a gzipped UTF-8 JSON Lines"):
        load_code_problems(bad)
