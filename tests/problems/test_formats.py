"""Dataset loaders (ORZ train and eval formats) and the resumable prompt sampler."""

from __future__ import annotations

import json

import pytest

from orz_rl.envs.code import SHIPPED_PROBLEMS as SHIPPED_CODE
from orz_rl.problems.benchmarks import DATA_DIR
from orz_rl.problems.formats import DatasetFormatError, load_code_problems, load_problems
from orz_rl.problems.problem import Problem
from orz_rl.problems.sampler import PromptSampler

GOOD = [{"from": "human", "value": "What is 1 + 1?"}, {"from": "assistant", "ground_truth": {"value": "2"}}]


def test_loads_the_real_orz_eval_files():
    sizes = {"math500": 500, "aime2024": 30, "gpqa_diamond": 198}
    for name, size in sizes.items():
        problems = load_problems(DATA_DIR / f"{name}.json")
        assert len(problems) == size
        assert all(p.question and p.answer for p in problems)
    gpqa = load_problems(DATA_DIR / "gpqa_diamond.json")
    assert all({letter for letter, _ in p.choices} == {"A", "B", "C", "D"} for p in gpqa)


def test_loads_the_training_format(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps([GOOD, GOOD]))
    assert load_problems(path) == [Problem("What is 1 + 1?", "2")] * 2


def test_malformed_item_in_json_list_names_file_and_line(tmp_path):
    bad = [{"from": "human", "value": "Q"}, {"from": "assistant", "value": "no ground truth"}]
    path = tmp_path / "train.json"
    path.write_text("[\n" + json.dumps(GOOD) + ",\n" + json.dumps(GOOD) + ",\n" + json.dumps(bad) + "\n]\n")
    with pytest.raises(DatasetFormatError, match=rf"{path}:4: malformed item .*ground_truth"):
        load_problems(path)


def test_malformed_line_in_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps(GOOD) + "\n{not json\n")
    with pytest.raises(DatasetFormatError, match=rf"{path}:3: invalid JSON"):
        load_problems(path)


def test_broken_json_list_names_the_line_of_the_error(tmp_path):
    path = tmp_path / "train.json"
    path.write_text("[\n" + json.dumps(GOOD) + ",\n" + json.dumps(GOOD)[:-5] + "\n]\n")
    with pytest.raises(DatasetFormatError, match=rf"{path}:\d+: invalid JSON"):
        load_problems(path)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_problems(tmp_path / "nope.json")


def test_sampler_resumes_at_the_same_prompt():
    problems = [Problem(str(i), str(i)) for i in range(7)]
    straight = PromptSampler(problems, seed=3)
    expected = [i for i, _ in straight.next_batch(20)]
    first = PromptSampler(problems, seed=3)
    got = [i for i, _ in first.next_batch(9)]
    resumed = PromptSampler(problems, seed=0)
    resumed.load_state_dict(first.state_dict())
    got += [i for i, _ in resumed.next_batch(11)]
    assert got == expected
    # every pass is a permutation of the whole dataset
    assert sorted(expected[:7]) == list(range(7)) and sorted(expected[7:14]) == list(range(7))


# --- programming problems -------------------------------------------------------------

CODE_GOOD = {"question": "Add.", "entry_point": "add", "asserts": ["assert add(1, 2) == 3"]}


def test_loads_the_shipped_programming_problems_in_both_test_forms():
    problems = load_code_problems(SHIPPED_CODE)
    assert len(problems) == 12
    assert all(p.tests is not None and p.answer == "" for p in problems)
    assert {bool(p.tests.stdio) for p in problems} == {True, False}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "invalid JSON"),
        (json.dumps({"question": "q"}), "exactly one of 'stdio'"),
        (json.dumps({**CODE_GOOD, "stdio": [{"input": "", "output": "1"}]}), "exactly one of 'stdio'"),
        (json.dumps({**CODE_GOOD, "entry_point": ""}), "entry_point"),
        (json.dumps({**CODE_GOOD, "asserts": ["assert add(1, 2) =="]}), "SyntaxError"),
        (json.dumps({**CODE_GOOD, "compare": "fuzzy"}), "'compare' must be"),
        (json.dumps({**CODE_GOOD, "assert": ["typo"]}), "unknown keys \\['assert'\\]"),
        (json.dumps({"question": "q", "stdio": [{"input": ""}]}), "KeyError"),
        (json.dumps({**CODE_GOOD, "question": " "}), "empty question"),
    ],
)
def test_a_malformed_programming_problem_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "code.jsonl"
    path.write_text(json.dumps(CODE_GOOD) + "\n" + line + "\n")
    with pytest.raises(DatasetFormatError, match=f"code.jsonl:2: .*{message}"):
        load_code_problems(path)


def test_seeking_a_sampler_to_n_draws_continues_as_drawing_them_would():
    problems = [Problem(f"q{i}", str(i)) for i in range(7)]
    drawn = PromptSampler(problems, seed=3)
    drawn.next_batch(17)  # two passes and three prompts into the third
    sought = PromptSampler(problems, seed=3)
    sought.seek(17)
    assert sought.state_dict() == drawn.state_dict() == {"seed": 3, "epoch": 2, "position": 3}
    assert [i for i, _ in sought.next_batch(9)] == [i for i, _ in drawn.next_batch(9)]


def test_a_file_in_no_built_in_format_is_an_unknown_format_error_naming_file_columns_and_formats(tmp_path):
    from orz_rl.problems.formats import UnknownFormatError, load_any_problems

    path = tmp_path / "countdown.jsonl"
    path.write_text(json.dumps({"numbers": [7, 1, 5], "target": 1}) + "\n")
    for load in (load_problems, load_any_problems):
        with pytest.raises(UnknownFormatError) as error:
            load(path)
        message = str(error.value)
        assert f"{path}:1: not in a built-in format (its columns: numbers, target)" in message
        assert "math500 (problem, solution" in message  # the published layouts are among those listed
    assert "ORZ's training, evaluation or multiple-choice items; programming problems" in message


def test_a_malformed_item_of_a_built_in_format_is_not_an_unknown_format_error(tmp_path):
    from orz_rl.problems.formats import UnknownFormatError

    path = tmp_path / "train.json"
    path.write_text(json.dumps([[{"from": "human", "value": "Q"}, {"from": "assistant"}]]))
    with pytest.raises(DatasetFormatError, match="malformed item") as error:
        load_problems(path)
    assert not isinstance(error.value, UnknownFormatError)  # no --task hint for a broken ORZ file
