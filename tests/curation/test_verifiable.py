import pytest

from orz_rl.curation.items import Item, read_items
from orz_rl.curation.verifiable import ParsePool, VerifiableConfig, rule_verdict, run
from tests.curation.sources import report, write_items

GRADABLE = [
    ("What is 3+4?", "7"),
    ("Simplify 2/4.", "\\frac{1}{2}"),
    ("Expand (x+1)^2 - 2x.", "x^2+1"),
    ("Find the point where the lines meet.", "(1, 2)"),
    ("Which day follows Sunday?", "\\text{Monday}"),
    ("Solve for x on the interval.", "[1, 2)"),
    ("Which is prime?\n(A) 4\n(B) 7\n(C) 9", "B"),
    ("What percentage of 50 is 5?", "10\\%"),
]
UNGRADABLE = [
    ("Prove that there are infinitely many primes.", "proof", "proof"),
    ("Let n be odd. Show that n^2 - 1 is divisible by 8.", "8", "proof"),
    ("Find x.", "\\blacksquare", "proof"),
    ("(a) Find x. (b) Find y.", "3", "multi_part"),
    ("Find x and y.", "(a) 3 (b) 4", "multi_part"),
    ("Which is prime?", "B", "choice_without_options"),
    ("Describe the graph of y = x^2.", "a parabola that opens upward", "free_text"),
    ("Find x.", "???", "unparsable_answer"),
    ("Find x.", "\\frac{", "unparsable_answer"),
    ("Find x.", "\\def\\x{1}\\x", "malformed_answer"),
    ("Find x.", "", "no_answer"),
]


def test_gradable_answers_are_kept_and_each_ungradable_one_dropped_with_its_reason(tmp_path):
    pairs = GRADABLE + [(q, a) for q, a, _ in UNGRADABLE]
    src = write_items(tmp_path / "in.jsonl", pairs)
    run(VerifiableConfig(input=src, out=tmp_path / "out.jsonl", workers=1))
    assert [i.answer for i in read_items(tmp_path / "out.jsonl")] == [a for _, a in GRADABLE]
    dropped = report(tmp_path / "out.jsonl")["dropped_items"]
    assert [(d["source"], d["reason"]) for d in dropped] == [
        (f"in.jsonl#{len(GRADABLE) + k}", reason) for k, (_, _, reason) in enumerate(UNGRADABLE)
    ]


def test_an_item_whose_source_gave_several_answers_is_multi_part():
    assert rule_verdict(Item("Q", "1; 2", "s", {"answer_parts": 2}))[0] == "multi_part"


@pytest.mark.parametrize("answer", ["(1, 2)", "(1)", "f(x)", "(a, b)"])
def test_tuples_and_function_values_are_not_part_labels(answer):
    assert rule_verdict(Item("Find it.", answer, "s")) == ("", {})


def test_a_parse_past_its_time_limit_is_dropped_not_waited_for():
    # The first parse in a fresh worker imports sympy and math-verify (about a second): with a
    # limit far below that, the batch and then each answer alone run past it.
    pool = ParsePool(workers=1, timeout=0.05)
    try:
        assert pool.verdicts([["x^2", "7/3"]]) == [["parse_timeout", "parse_timeout"]]
    finally:
        pool.close()
