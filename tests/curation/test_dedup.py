import pytest

from orz_rl.curation.dedup import DedupConfig, run
from orz_rl.curation.items import read_items
from tests.curation.sources import report, write_items

BAG = (
    "A bag contains 5 red balls, 7 blue balls and 4 green balls. Two balls are drawn at random, one after "
    "the other and without replacement, and their colours are written down in the order they are drawn. "
    "What is the probability that both balls drawn are red? Express your answer as a common fraction."
)
TRAINS = (
    "Two trains leave the same station at noon, one heading north at 60 miles per hour and the other "
    "heading east at 80 miles per hour. How many miles apart are the two trains at 2 pm?"
)


def sources(path):
    return [item.source for item in read_items(path)]


def test_exact_duplicates_after_normalising_are_dropped_with_their_cluster(tmp_path):
    src = write_items(
        tmp_path / "in.jsonl",
        [
            (BAG, "\\frac{1}{12}"),
            (TRAINS, "200"),
            (BAG.upper().replace(" ", "  "), "\\frac{1}{12}"),  # case and spacing
            (BAG.replace("5 red", "$5$ red"), "\\frac{1}{13}"),  # a math delimiter; another answer
        ],
    )
    run(DedupConfig(inputs=(src,), out=tmp_path / "out.jsonl"))
    assert sources(tmp_path / "out.jsonl") == ["in.jsonl#0", "in.jsonl#1"]
    saved = report(tmp_path / "out.jsonl")
    assert saved["reasons"] == {"duplicate": 2}
    assert [(d["source"], d["kept"], d["same_answer"]) for d in saved["dropped_items"]] == [
        ("in.jsonl#2", "in.jsonl#0", True),
        ("in.jsonl#3", "in.jsonl#0", False),  # one question, two answers: worth knowing
    ]
    assert saved["clusters"] == [
        {
            "kept": "in.jsonl#0",
            "members": [
                {"source": "in.jsonl#2", "kind": "duplicate", "same_answer": True},
                {"source": "in.jsonl#3", "kind": "duplicate", "same_answer": False},
            ],
        }
    ]


def test_a_near_duplicate_with_the_same_answer_is_dropped_and_a_variant_is_kept(tmp_path):
    reworded = BAG.replace("written down", "noted down")  # same problem
    variant = BAG.replace("5 red", "6 red")  # another problem: another answer
    src = write_items(
        tmp_path / "in.jsonl",
        [(BAG, "\\frac{1}{12}"), (reworded, "\\dfrac{1}{12}"), (variant, "\\frac{1}{8}")],
    )
    run(DedupConfig(inputs=(src,), out=tmp_path / "out.jsonl"))
    assert sources(tmp_path / "out.jsonl") == ["in.jsonl#0", "in.jsonl#2"]
    saved = report(tmp_path / "out.jsonl")
    (dropped,) = saved["dropped_items"]
    assert dropped["reason"] == "near_duplicate" and dropped["kept"] == "in.jsonl#0"
    assert 0.8 <= dropped["similarity"] < 1.0
    assert saved["variants_kept"] == 1

    run(DedupConfig(inputs=(src,), out=tmp_path / "any.jsonl", any_answer=True))
    assert sources(tmp_path / "any.jsonl") == ["in.jsonl#0"]


def test_threshold_one_drops_exact_duplicates_only(tmp_path):
    src = write_items(
        tmp_path / "in.jsonl", [(BAG, "1"), (BAG.replace("written down", "noted down"), "1"), (BAG, "1")]
    )
    run(DedupConfig(inputs=(src,), out=tmp_path / "out.jsonl", threshold=1.0))
    assert sources(tmp_path / "out.jsonl") == ["in.jsonl#0", "in.jsonl#1"]


def test_several_inputs_are_merged_in_order(tmp_path):
    a = write_items(tmp_path / "a.jsonl", [(BAG, "1")])
    b = write_items(tmp_path / "b.json", [(TRAINS, "200"), (BAG, "1")])
    run(DedupConfig(inputs=(a, b), out=tmp_path / "out.jsonl"))
    assert sources(tmp_path / "out.jsonl") == ["a.jsonl#0", "b.json#0"]
    assert report(tmp_path / "out.jsonl")["dropped_items"][0]["source"] == "b.json#1"


def test_a_threshold_outside_zero_one_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--threshold 1.5"):
        run(DedupConfig(inputs=(tmp_path / "in.jsonl",), out=tmp_path / "out.jsonl", threshold=1.5))
