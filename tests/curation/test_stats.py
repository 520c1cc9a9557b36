import json

import pytest

from orz_rl.curation.stats import StatsConfig, answer_type, origin, run
from tests.curation.sources import write_items


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        ("42", "integer"),
        ("-1,000", "integer"),
        ("0.5", "decimal"),
        ("\\frac{1}{2}", "fraction"),
        ("3/4", "fraction"),
        ("B", "option letter"),
        ("(1, 2)", "interval, tuple or set"),
        ("[0, 1)", "interval, tuple or set"),
        ("x^2+1", "expression"),
        ("2\\sqrt{3}", "expression"),
        ("Monday", "text"),
    ],
)
def test_answer_types(answer, kind):
    assert answer_type(answer) == kind


def test_origin_strips_the_row():
    assert origin("raw/a.parquet#17") == "raw/a.parquet"
    assert origin("hub:owner/name/train#3") == "hub:owner/name/train"
    assert origin("train.json:12") == "train.json"


def test_stats_counts_sources_steps_and_types_in_markdown_and_a_png(tmp_path):
    path = tmp_path / "train.jsonl"
    write_items(path, [("What is 1+1?", "2"), ("Simplify 2/4.", "\\frac{1}{2}"), ("Which day?", "Monday")])
    report = {"step": "dedup", "read": 5, "kept": 3, "reasons": {"duplicate": 2}}
    (tmp_path / "train.report.json").write_text(json.dumps(report))
    text = run(StatsConfig(input=path))
    assert "3 items." in text
    assert "| dedup | 5 | 3 | 2 | 2 duplicate |" in text
    assert "| train.jsonl | 3 |" in text
    assert "| integer | 1 |" in text and "| fraction | 1 |" in text and "| text | 1 |" in text
    assert (tmp_path / "train.stats.md").read_text() == text
    assert (tmp_path / "train.stats.png").read_bytes()[:4] == b"\x89PNG"


def test_a_report_that_is_not_one_names_the_file(tmp_path):
    path = write_items(tmp_path / "train.jsonl", [("Q", "1")])
    (tmp_path / "other.report.json").write_text("{}")
    with pytest.raises(ValueError, match="other.report.json"):
        run(StatsConfig(input=path))
