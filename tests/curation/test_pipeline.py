"""The chain a user runs: import (three layouts, three file types) -> dedup -> decontaminate ->
verifiable -> stats, on planted cases; the result loads in the trainer."""

from orz_rl.curation.text import words
from orz_rl.problems.benchmarks import resolve_benchmark
from orz_rl.problems.formats import load_problems
from tests.conftest import orz_cli_here
from tests.curation.sources import report, write_json, write_jsonl, write_parquet

#: Clean problems, all different, each with a gradable answer: every one must survive.
CLEAN = [
    ("A rectangle has a perimeter of 30 cm and a length of 9 cm. What is its area in square cm?", "54"),
    ("How many positive divisors does 360 have?", "24"),
    ("Solve for $y$: $3y - 7 = 11$.", "6"),
    ("What is the remainder when $2^{10}$ is divided by 7?", "2"),
    ("Compute the sum of the interior angles of a hexagon, in degrees.", "720"),
    ("If $f(x) = x^2 - 4x$, find the minimum value of $f$ over the real numbers.", "-4"),
    ("A fair die is rolled twice. What is the probability that the sum is 7?", "\\frac{1}{6}"),
    ("Write $0.\\overline{3}$ as a common fraction.", "\\frac{1}{3}"),
    ("Find all real $x$ with $x^2 = 9$, as a set.", "\\{-3, 3\\}"),
]
BAG = (
    "A bag holds 5 red, 7 blue and 4 green marbles. Two marbles are drawn one after the other without "
    "replacement and their colours are written down in order. What is the probability that both are red?"
)


def math500_span() -> str:
    """13 tokens of a plain-text MATH500 question, rebuilt from its tokens."""
    for problem in load_problems(resolve_benchmark("math500")[1]):
        tokens = words(problem.question)
        if len(tokens) >= 30 and not any(t in "\\$" for t in tokens):
            return " ".join(tokens[4:17])
    raise AssertionError("no plain-text MATH500 question")


def test_import_dedup_decontaminate_verifiable_stats_removes_the_planted_items_and_nothing_else(tmp_path):
    raw = tmp_path / "raw"  # the sources; each step writes beside it, never over one
    raw.mkdir()
    a = write_json(
        raw / "a.json",
        [{"problem": q, "answer": ans} for q, ans in CLEAN[:3]]
        + [
            {"problem": BAG, "answer": "\\frac{1}{12}"},  # a.json#3
            {"problem": "Prove that $\\sqrt{2}$ is irrational.", "answer": "proof"},  # a.json#4: proof
        ],
    )
    b = write_jsonl(
        raw / "b.jsonl",
        [{"question": q, "final_answer": [ans]} for q, ans in CLEAN[3:6]]
        + [
            {"question": CLEAN[0][0].upper(), "final_answer": ["54"]},  # b.jsonl#3: exact duplicate
            {
                "question": BAG.replace("written down", "noted down"),
                "final_answer": ["\\frac{1}{12}"],
            },  # #4: near
            {"question": f"Consider this. {math500_span()} And so on.", "final_answer": ["1"]},  # #5: MATH500
            {"question": "Find $a$ and $b$.", "final_answer": ["1", "2"]},  # #6: multi-part
        ],
    )
    c = write_parquet(
        raw / "c.parquet",
        [{"problem": q, "solution": f"Work it out: \\boxed{{{ans}}}."} for q, ans in CLEAN[6:]]
        + [
            {
                "problem": "Which of these is prime?",
                "solution": "It is \\boxed{C}.",
            },  # c.parquet#3: no options
            {
                "problem": "Describe the set of points.",
                "solution": "\\boxed{a circle around the origin}",
            },  # #4
        ],
    )
    for src, preset in ((a, "problem-answer"), (b, "question-final_answer"), (c, "solution-boxed")):
        out = orz_cli_here(
            "data", "import", str(src), "--out", str(tmp_path / f"{src.stem}.jsonl"), "--preset", preset
        )
        assert out.returncode == 0, out.stderr[-3000:]
    steps = [
        ("dedup", "a.jsonl", "b.jsonl", "c.jsonl", "--out", "dedup.jsonl"),
        ("decontaminate", "dedup.jsonl", "--out", "clean.jsonl"),
        ("verifiable", "clean.jsonl", "--out", "train.jsonl", "--workers", "1"),
    ]
    for step, *args in steps:
        paths = [str(tmp_path / a) if a.endswith(".jsonl") else a for a in args]
        out = orz_cli_here("data", step, *paths)
        assert out.returncode == 0, out.stderr[-3000:]
    stats = orz_cli_here("data", "stats", str(tmp_path / "train.jsonl"))
    assert stats.returncode == 0, stats.stderr[-3000:]

    problems = load_problems(tmp_path / "train.jsonl")  # the trainer's own loader
    expected = CLEAN[:3] + [(BAG, "\\frac{1}{12}")] + CLEAN[3:]
    assert [(p.question, p.answer) for p in problems] == expected

    dropped = {
        step: [(d["source"].split("/")[-1], d["reason"]) for d in report(tmp_path / out)["dropped_items"]]
        for step, out in (
            ("dedup", "dedup.jsonl"),
            ("decontaminate", "clean.jsonl"),
            ("verifiable", "train.jsonl"),
        )
    }
    assert dropped == {
        "dedup": [("b.jsonl#3", "duplicate"), ("b.jsonl#4", "near_duplicate")],
        "decontaminate": [("b.jsonl#5", "contaminated")],
        "verifiable": [
            ("a.json#4", "proof"),
            ("b.jsonl#6", "multi_part"),
            ("c.parquet#3", "choice_without_options"),
            ("c.parquet#4", "free_text"),
        ],
    }
    card = (tmp_path / "train.stats.md").read_text()
    assert f"{len(expected)} items." in card
    assert "| verifiable | 14 | 10 | 4 |" in card and "| dedup | 17 | 15 | 2 |" in card
    assert (tmp_path / "train.stats.png").is_file()
