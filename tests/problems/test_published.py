"""Benchmarks load from the files people download, in every format each is published in."""

from __future__ import annotations

from collections import Counter

import pytest

from orz_rl.problems.benchmarks import UnknownBenchmarkError, resolve_benchmark, resolve_benchmarks
from orz_rl.problems.formats import load_any_problems, load_problems
from orz_rl.problems.published import find_layout
from orz_rl.problems.tables import DatasetFormatError
from tests.problems import published_rows as rows
from tests.problems.published_rows import write

FLAT = (".parquet", ".csv", ".json", ".jsonl", ".jsonl.gz")
NESTED = (".parquet", ".json", ".jsonl", ".jsonl.gz")  # a list column has no CSV form


def load_each(tmp_path, name, data, suffixes, loader=load_any_problems):
    """The problems of ``data`` written in each format; all formats must give the same."""
    loaded = [loader(write(tmp_path / f"{name}{suffix}", data)) for suffix in suffixes]
    for suffix, problems in zip(suffixes[1:], loaded[1:], strict=True):
        assert problems == loaded[0], f"{name}{suffix} differs from {name}{suffixes[0]}"
    return loaded[0]


@pytest.mark.parametrize("loader", [load_any_problems, load_problems])
def test_math500_as_huggingfaceh4_publishes_it_keeps_level_and_subject(tmp_path, loader):
    problems = load_each(tmp_path, "test", rows.MATH500, FLAT, loader)
    assert [(p.question, p.answer) for p in problems] == [(r["problem"], r["answer"]) for r in rows.MATH500]
    assert problems[0].groups == (("level", "2"), ("subject", "Prealgebra"))
    assert problems[2].groups == (("level", "2"), ("subject", "Counting & Probability"))
    assert all(p.tests is None and not p.choices for p in problems)


@pytest.mark.parametrize(
    ("data", "answers"),
    [(rows.AIME_H4, ["1", "144"]), (rows.AIME_CAPITALISED, ["7", "81"]), (rows.AIME_QUESTION, ["25", "24"])],
    ids=["huggingfaceh4", "capitalised-columns", "question-answer"],
)
def test_aime_as_distributed_on_the_hub_loads_with_integer_or_text_answers(tmp_path, data, answers):
    problems = load_each(tmp_path, "aime", data, FLAT)
    assert [p.answer for p in problems] == answers
    assert problems[0].question.startswith("Comput") or problems[0].question.startswith("Find")


def test_gpqa_csv_shuffles_the_options_by_a_seeded_permutation_per_item(tmp_path):
    problems = load_each(tmp_path, "gpqa_diamond", rows.GPQA, FLAT)
    for problem, row in zip(problems, rows.GPQA, strict=True):
        options = dict(problem.choices)
        assert sorted(options.values()) == sorted(
            [row["Correct Answer"], *(row[f"Incorrect Answer {i}"] for i in (1, 2, 3))]
        )
        assert options[problem.answer] == row["Correct Answer"]
        assert problem.question.startswith(row["Question"] + "\n(A) ")
        assert problem.groups == (("domain", row["High-level domain"]),)
    # The file always has the right answer first; after the shuffle it is at every letter alike.
    many = [dict(rows.GPQA[0], Question=f"Question number {i}?") for i in range(200)]
    letters = Counter(p.answer for p in load_any_problems(write(tmp_path / "many.csv", many)))
    assert set(letters) == {"A", "B", "C", "D"} and min(letters.values()) > 30, letters
    # Seeded: the same item gets the same permutation in another file, whatever its position.
    again = load_any_problems(write(tmp_path / "again.jsonl", many[::-1]))
    assert [p.choices for p in again[::-1]] == [p.choices for p in load_any_problems(tmp_path / "many.csv")]


def test_mmlu_as_cais_publishes_it_gets_the_letter_never_the_index(tmp_path):
    problems = load_each(tmp_path, "test-00000-of-00001", rows.MMLU, NESTED)
    assert [p.answer for p in problems] == ["B", "C"]
    assert problems[0].choices == (("A", "3"), ("B", "4"), ("C", "5"), ("D", "22"))
    assert problems[0].question == "What is 2 + 2?\n(A) 3\n(B) 4\n(C) 5\n(D) 22"
    assert problems[1].groups == (("subject", "abstract_algebra"),)


def test_mmlu_original_csv_without_a_header_keeps_every_option_as_written(tmp_path):
    problems = load_any_problems(write(tmp_path / "high_school_mathematics_test.csv", rows.MMLU_CSV))
    assert [p.answer for p in problems] == ["B", "C"]
    # "None", "NA" and "nan" are options, not missing values (pandas' CSV reader would drop them).
    assert problems[1].choices == (("A", "None"), ("B", "NA"), ("C", "8"), ("D", "nan"))
    assert problems[0].groups == (("subject", "high_school_mathematics"),)
    header = [["question", "A", "B", "C", "D", "answer"], *rows.MMLU_CSV]
    with_header = load_any_problems(write(tmp_path / "mmlu_with_header.csv", header))
    assert [(p.question, p.answer, p.choices) for p in with_header] == [
        (p.question, p.answer, p.choices) for p in problems
    ]


def test_mmlu_pro_keeps_ten_options_and_its_category(tmp_path):
    problems = load_each(tmp_path, "mmlu_pro", rows.MMLU_PRO, NESTED)
    assert [p.answer for p in problems] == ["B", "C"]
    assert [letter for letter, _ in problems[0].choices] == list("ABCDEFGHIJ")
    assert problems[0].groups == (("category", "math"),) and problems[1].groups == (("category", "health"),)


def test_gsm8k_truth_is_the_number_after_the_four_hashes(tmp_path):
    problems = load_each(tmp_path, "gsm8k", rows.GSM8K, FLAT)
    assert [p.answer for p in problems] == ["7", "1234"]


def test_each_layout_is_recognised_by_its_columns():
    named = {
        "math500": rows.MATH500[0],
        "problem-answer": rows.AIME_H4[0],
        "gpqa": rows.GPQA[0],
        "mmlu": rows.MMLU[0],
        "mmlu-pro": rows.MMLU_PRO[0],
        "gsm8k": rows.GSM8K[0],
    }
    assert {name: find_layout(row).name for name, row in named.items()} == {name: name for name in named}
    assert find_layout(rows.AIME_QUESTION[0]).name == "problem-answer"  # no "####": not GSM8K


@pytest.mark.parametrize("suffix", FLAT)
def test_a_file_in_no_known_layout_is_one_error_naming_the_file_its_columns_and_the_layouts(tmp_path, suffix):
    path = write(tmp_path / f"mystery{suffix}", [{"prompt_text": "Q", "gold": "1"}])
    with pytest.raises(DatasetFormatError) as error:
        load_any_problems(path)
    message = str(error.value)
    assert str(path) in message and "prompt_text, gold" in message
    assert "math500 (problem, solution" in message and "gpqa (question, correct answer" in message


def test_a_bad_value_in_a_known_layout_names_the_file_row_and_column(tmp_path):
    bad = [dict(rows.MMLU[0]), dict(rows.MMLU[1], answer=7)]
    with pytest.raises(
        DatasetFormatError, match=r"bad\.parquet: row 2: .*'answer' must be an option index 0-3"
    ):
        load_any_problems(write(tmp_path / "bad.parquet", bad))
    with pytest.raises(DatasetFormatError, match=r"short\.csv:3: 3 cells where the header has 6 columns"):
        header, good, short = (
            ["question", "a", "b", "c", "d", "answer"],
            ["Q", "1", "2", "3", "4", "A"],
            ["Q", "1", "2"],
        )
        load_any_problems(write(tmp_path / "short.csv", [header, good, short]))
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not parquet at all")
    with pytest.raises(DatasetFormatError, match="broken.parquet: could not be read as Parquet"):
        load_any_problems(tmp_path / "broken.parquet")


def test_a_benchmark_file_of_a_format_orz_rl_does_not_read_names_the_formats_it_does(tmp_path):
    (tmp_path / "math.txt").write_text("What is 1+1? 2")
    with pytest.raises(UnknownBenchmarkError, match=r"math\.txt.*\.parquet.*\.csv.*\.jsonl\.gz"):
        resolve_benchmark(str(tmp_path / "math.txt"))


def test_name_equals_path_names_a_file_and_two_of_one_name_are_one_error_naming_both(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    first, second = (
        write(tmp_path / "a" / "test.jsonl", rows.MATH500),
        write(tmp_path / "b" / "test.jsonl", rows.GSM8K),
    )
    assert resolve_benchmarks([f"math500_h4={first}", f"gsm8k={second}"]) == {
        "math500_h4": first,
        "gsm8k": second,
    }
    with pytest.raises(UnknownBenchmarkError) as error:
        resolve_benchmarks([str(first), str(second)])
    assert (
        str(first) in str(error.value) and str(second) in str(error.value) and "NAME=PATH" in str(error.value)
    )
    mine = write(tmp_path / "math500.jsonl", rows.MATH500)
    with pytest.raises(UnknownBenchmarkError, match="two benchmarks named 'math500'"):
        resolve_benchmarks(["math500", str(mine)])
    with pytest.raises(FileNotFoundError, match="benchmark 'mine'"):
        resolve_benchmark(f"mine={tmp_path / 'absent.jsonl'}")
