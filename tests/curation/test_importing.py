import os
import subprocess
import sys

import pytest

from orz_rl.curation.importing import ImportConfig, answer_text, field_value, run
from orz_rl.curation.items import read_items
from orz_rl.problems.formats import DatasetFormatError
from tests.curation.sources import report, write_json, write_jsonl, write_parquet


def pairs(path):
    return [(item.question, item.answer, item.source) for item in read_items(path)]


def test_problem_answer_json_keeps_every_row_with_its_source(tmp_path):
    src = write_json(
        tmp_path / "a.json", [{"problem": "What is 1+1?", "answer": 2}, {"problem": "Q2", "answer": "$x$"}]
    )
    run(ImportConfig(inputs=(str(src),), out=tmp_path / "out.jsonl"))
    assert pairs(tmp_path / "out.jsonl") == [("What is 1+1?", "2", f"{src}#0"), ("Q2", "x", f"{src}#1")]


def test_question_final_answer_jsonl_joins_several_answers_and_counts_them(tmp_path):
    rows = [{"question": "Q1", "final_answer": ["$5$"]}, {"question": "Q2", "final_answer": ["1", "2"]}]
    src = write_jsonl(tmp_path / "b.jsonl", rows)
    run(ImportConfig(inputs=(str(src),), out=tmp_path / "out.jsonl", preset="question-final_answer"))
    items = list(read_items(tmp_path / "out.jsonl"))
    assert [(i.answer, i.meta.get("answer_parts")) for i in items] == [("5", None), ("1; 2", 2)]


def test_solution_boxed_parquet_takes_the_last_box_and_drops_rows_without_one(tmp_path):
    rows = [
        {"problem": "Q1", "solution": "First \\boxed{3}, then \\boxed{\\frac{1}{2}}."},
        {"problem": "Q2", "solution": "No box here."},
    ]
    src = write_parquet(tmp_path / "c.parquet", rows)
    run(ImportConfig(inputs=(str(src),), out=tmp_path / "out.jsonl", preset="solution-boxed"))
    assert pairs(tmp_path / "out.jsonl") == [("Q1", "\\frac{1}{2}", f"{src}#0")]
    dropped = report(tmp_path / "out.jsonl")["dropped_items"]
    assert dropped == [
        {
            "source": f"{src}#1",
            "reason": "no_boxed_answer",
            "field": "solution",
            "item": {"question": "Q2", "answer": ""},  # the whole item, as far as it was read
        }
    ]


def test_fields_named_on_the_command_line_may_be_nested(tmp_path):
    rows = [{"prompt": [{"value": "Q1"}], "meta": {"gold": "7"}}]
    src = write_jsonl(tmp_path / "d.jsonl", rows)
    cfg = ImportConfig(
        inputs=(str(src),),
        out=tmp_path / "out.jsonl",
        question_field="prompt.0.value",
        answer_field="meta.gold",
    )
    run(cfg)
    assert pairs(tmp_path / "out.jsonl") == [("Q1", "7", f"{src}#0")]


def test_orz_preset_reads_training_and_evaluation_files(tmp_path):
    train = write_json(
        tmp_path / "train.json",
        [[{"from": "human", "value": "Q1"}, {"from": "assistant", "ground_truth": {"value": "1"}}]],
    )
    evals = write_json(
        tmp_path / "eval.json", [{"prompt": [{"from": "user", "value": "Q2"}], "final_answer": "2"}]
    )
    run(ImportConfig(inputs=(str(train), str(evals)), out=tmp_path / "out.jsonl", preset="orz"))
    assert [(q, a) for q, a, _ in pairs(tmp_path / "out.jsonl")] == [("Q1", "1"), ("Q2", "2")]


def test_rows_without_question_or_answer_are_dropped_with_their_reason(tmp_path):
    rows = [
        {"problem": "", "answer": "1"},
        {"problem": "Q", "answer": None},
        {"problem": "Q", "answer": {"a": 1}},
        {"answer": "1"},
        {"problem": "kept", "answer": "1"},
    ]
    src = write_jsonl(tmp_path / "e.jsonl", rows)
    run(ImportConfig(inputs=(str(src),), out=tmp_path / "out.jsonl"))
    saved = report(tmp_path / "out.jsonl")
    assert saved["read"] == 5 and saved["kept"] == 1
    assert [d["reason"] for d in saved["dropped_items"]] == [
        "no_question",
        "no_answer",
        "answer_not_text",
        "no_question",
    ]
    assert [d["source"] for d in saved["dropped_items"]] == [f"{src}#{i}" for i in range(4)]


def test_a_missing_file_is_one_error_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.parquet"):
        run(ImportConfig(inputs=(str(tmp_path / "nope.parquet"),), out=tmp_path / "out.jsonl"))
    assert not (tmp_path / "out.jsonl").exists()


def test_a_corrupt_parquet_file_is_one_error_naming_it(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DatasetFormatError, match="bad.parquet"):
        run(ImportConfig(inputs=(str(tmp_path / "bad.parquet"),), out=tmp_path / "out.jsonl"))


def test_an_input_that_is_neither_a_file_nor_a_hub_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match="notes.txt"):
        run(ImportConfig(inputs=("notes.txt",), out=tmp_path / "out.jsonl"))


def test_answer_text_and_field_value():
    assert answer_text("\\(3\\)") == ("3", 1)
    assert answer_text(["$1$", "2"]) == ("1; 2", 2)
    with pytest.raises(ValueError, match="bool"):
        answer_text(True)
    assert field_value({"a": [{"b": 1}]}, "a.0.b") == 1
    assert field_value({"a": []}, "a.3.b") is None


def test_a_hub_name_that_cannot_be_reached_is_one_error_naming_it(tmp_path):
    # Offline, as on a machine without the Hub: datasets fails at once instead of retrying.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    args = ["data", "import", "someone/some-math", "--out", str(tmp_path / "out.jsonl")]
    out = subprocess.run([sys.executable, "-m", "orz_rl.cli", *args], capture_output=True, text=True, env=env)
    assert out.returncode == 1
    assert "orz-rl: error: hub:someone/some-math/train: could not be read" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "out.jsonl").exists()


def test_published_layouts_import_with_the_option_letter_never_the_index(tmp_path):
    from orz_rl.problems.formats import load_problems
    from tests.problems import published_rows as rows

    sources = [
        rows.write(tmp_path / "mmlu.parquet", rows.MMLU),  # cais/mmlu: the answer an index
        rows.write(tmp_path / "mmlu_pro.jsonl", rows.MMLU_PRO),
        rows.write(tmp_path / "gpqa_diamond.csv", rows.GPQA),
        rows.write(tmp_path / "gsm8k.parquet", rows.GSM8K),
        rows.write(tmp_path / "aime.jsonl", rows.AIME_QUESTION),
    ]
    out = tmp_path / "out.jsonl"
    run(ImportConfig(inputs=tuple(map(str, sources)), out=out))
    items = list(read_items(out))
    assert [i.answer for i in items[:2]] == ["B", "C"]  # cais/mmlu's 1 and 2, as letters
    assert items[0].question == "What is 2 + 2?\n(A) 3\n(B) 4\n(C) 5\n(D) 22"
    assert items[0].meta["choices"] == {"A": "3", "B": "4", "C": "5", "D": "22"}
    assert [i.answer for i in items[6:]] == ["7", "1234", "25", "24"]  # GSM8K's "#### N", AIME
    assert report(out)["kept"] == 10
    # The trainer's loader reads the options back, so the letter is graded as multiple choice.
    trained = load_problems(out)
    assert (
        trained[0].choices == (("A", "3"), ("B", "4"), ("C", "5"), ("D", "22")) and trained[0].answer == "B"
    )
    assert dict(trained[4].choices)[trained[4].answer] == "Argon"


def test_a_first_row_in_no_known_layout_is_one_error_naming_its_columns(tmp_path):
    src = write_jsonl(tmp_path / "odd.jsonl", [{"prompt_text": "Q", "gold": 1}])
    with pytest.raises(
        DatasetFormatError, match=r"odd\.jsonl#0: its columns \(prompt_text, gold\) match no layout"
    ):
        run(ImportConfig(inputs=(str(src),), out=tmp_path / "out.jsonl"))
    assert not (tmp_path / "out.jsonl").exists()


def test_a_multiple_choice_row_is_never_written_with_its_index_whatever_the_preset(tmp_path):
    from tests.problems import published_rows as rows

    src = rows.write(tmp_path / "mmlu.parquet", rows.MMLU)
    for preset, fields in (
        ("problem-answer", {}),
        ("auto", {"question_field": "question", "answer_field": "answer"}),
    ):
        out = tmp_path / f"{preset}.jsonl"
        run(ImportConfig(inputs=(str(src),), out=out, preset=preset, **fields))
        assert [i.answer for i in read_items(out)] == ["B", "C"]


def test_an_output_that_is_an_input_is_refused_before_anything_is_written(tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", [{"problem": "Q", "answer": "1"}])
    before = src.read_bytes()
    link = tmp_path / "link.jsonl"
    link.symlink_to(src)
    for out, report_path in (
        (src, None),
        (tmp_path / "." / "a.jsonl", None),
        (link, None),
        (tmp_path / "o.jsonl", src),
    ):
        with pytest.raises(ValueError, match="which it would replace"):
            run(ImportConfig(inputs=(str(src),), out=out, report=report_path))
    assert src.read_bytes() == before and not (tmp_path / "o.jsonl").exists()
