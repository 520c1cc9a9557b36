import json

import pytest

from orz_rl.curation.items import Item, ItemWriter, Report, default_report, read_items
from orz_rl.problems.formats import DatasetFormatError, load_problems


@pytest.mark.parametrize("name", ["train.jsonl", "train.json"])
def test_written_items_read_back_and_load_in_the_trainer(tmp_path, name):
    items = [Item("What is 1+1?", "2", "a.json#0"), Item("Q2", "x^2", "b.parquet#5", {"pass_rate": 0.5})]
    with ItemWriter(tmp_path / name) as writer:
        for item in items:
            writer.write(item)
    assert list(read_items(tmp_path / name)) == items
    problems = load_problems(tmp_path / name)  # the trainer's own loader
    assert [(p.question, p.answer) for p in problems] == [("What is 1+1?", "2"), ("Q2", "x^2")]


def test_metadata_rides_on_the_human_turn(tmp_path):
    with ItemWriter(tmp_path / "t.jsonl") as writer:
        writer.write(Item("Q", "1", "src#0", {"pass_rate": 0.25}))
    human, assistant = json.loads((tmp_path / "t.jsonl").read_text())
    assert human == {"from": "human", "value": "Q", "source": "src#0", "pass_rate": 0.25}
    assert assistant == {"from": "assistant", "ground_truth": {"value": "1"}}


def test_a_malformed_dialogue_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '[{"from": "human", "value": "Q"}, {"from": "assistant", "ground_truth": {"value": "1"}}]\n'
    )
    path.write_text(path.read_text() + '[{"from": "human", "value": "Q"}]\n')
    with pytest.raises(DatasetFormatError, match=r"bad\.jsonl:2: not an ORZ training dialogue"):
        list(read_items(path))


def test_a_failed_step_leaves_no_output(tmp_path):
    with pytest.raises(RuntimeError), ItemWriter(tmp_path / "out.jsonl") as writer:
        writer.write(Item("Q", "1", "s"))
        raise RuntimeError("the step failed")
    assert list(tmp_path.iterdir()) == []


def test_an_output_without_a_json_suffix_is_refused(tmp_path):
    with pytest.raises(ValueError, match="out.txt"):
        ItemWriter(tmp_path / "out.txt")


def test_report_counts_reasons_and_names_each_dropped_item(tmp_path):
    report = Report("dedup", ["in.jsonl"], "out.jsonl", read=3, kept=1)
    report.drop(Item("Q", "1", "a#1"), "duplicate", kept="a#0")
    report.drop(Item("Q", "1", "a#2"), "near_duplicate", kept="a#0", similarity=0.9)
    saved = json.loads(report.write(default_report(tmp_path / "out.jsonl")).read_text())
    assert (tmp_path / "out.report.json").is_file()
    assert saved["dropped"] == 2 and saved["reasons"] == {"duplicate": 1, "near_duplicate": 1}
    assert [d["source"] for d in saved["dropped_items"]] == ["a#1", "a#2"]


def test_a_crafted_line_nested_beyond_the_parser_is_one_error_naming_it(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(DatasetFormatError, match=r"deep\.jsonl:1: JSON nested too deeply"):
        list(read_items(path))
