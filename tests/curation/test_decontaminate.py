import json

import pytest

from orz_rl.curation.decontaminate import DecontaminateConfig, run
from orz_rl.curation.items import read_items
from orz_rl.curation.text import words
from orz_rl.problems.benchmarks import resolve_benchmark
from orz_rl.problems.formats import load_problems
from tests.curation.sources import report, write_items

UNRELATED = "A farmer has some chickens and some cows in a field behind the old red barn near the river."


def math500_question() -> tuple[int, list[str]]:
    """A MATH500 question of plain words (no LaTeX), as its tokens: text rebuilt from them by
    spaces has the same tokens."""
    for index, problem in enumerate(load_problems(resolve_benchmark("math500")[1])):
        tokens = words(problem.question)
        if len(tokens) >= 40 and not any(t in "\\$" for t in tokens):
            return index, tokens
    raise AssertionError("MATH500 has no plain-text question of 40 tokens")


def kept_sources(path):
    return [item.source for item in read_items(path)]


def test_a_copied_13_token_span_is_dropped_and_a_12_token_one_or_a_paraphrase_kept(tmp_path):
    index, tokens = math500_question()
    # Every 12 tokens a word of our own: no 13 tokens in a row are MATH500's.
    paraphrase = []
    for start in range(0, len(tokens), 12):
        paraphrase += [*tokens[start : start + 12], "indeed"]
    src = write_items(
        tmp_path / "in.jsonl",
        [
            (" ".join(paraphrase), "1"),
            (f"{UNRELATED} {' '.join(tokens[5:17])} {UNRELATED}", "2"),  # 12 tokens
            (f"{UNRELATED} {' '.join(tokens[5:18])} {UNRELATED}", "3"),  # 13 tokens
            (UNRELATED, "4"),
        ],
    )
    run(DecontaminateConfig(input=src, out=tmp_path / "out.jsonl"))
    assert kept_sources(tmp_path / "out.jsonl") == ["in.jsonl#0", "in.jsonl#1", "in.jsonl#3"]
    saved = report(tmp_path / "out.jsonl")
    (hit,) = saved["dropped_items"]
    assert hit == {
        "source": "in.jsonl#2",
        "reason": "contaminated",
        "benchmark": "math500",
        "benchmark_item": index,
        "span": " ".join(tokens[5:18]),
        "item": {"question": f"{UNRELATED} {' '.join(tokens[5:18])} {UNRELATED}", "answer": "3"},
    }
    assert saved["hits"] == {"math500": 1, "aime2024": 0, "gpqa_diamond": 0, "humaneval": 0}


def test_the_span_reported_is_the_longest_shared_run(tmp_path):
    index, tokens = math500_question()
    src = write_items(tmp_path / "in.jsonl", [(f"{UNRELATED} {' '.join(tokens[3:30])}", "1")])
    run(DecontaminateConfig(input=src, out=tmp_path / "out.jsonl", benchmarks=("math500",)))
    assert report(tmp_path / "out.jsonl")["dropped_items"][0]["span"] == " ".join(tokens[3:30])


def test_the_ngram_length_is_a_flag(tmp_path):
    _, tokens = math500_question()
    src = write_items(tmp_path / "in.jsonl", [(f"{UNRELATED} {' '.join(tokens[5:13])} {UNRELATED}", "1")])
    run(DecontaminateConfig(input=src, out=tmp_path / "13.jsonl", benchmarks=("math500",)))
    run(DecontaminateConfig(input=src, out=tmp_path / "8.jsonl", benchmarks=("math500",), ngram=8))
    assert len(kept_sources(tmp_path / "13.jsonl")) == 1 and kept_sources(tmp_path / "8.jsonl") == []


def test_a_benchmark_question_shorter_than_the_ngram_matches_whole(tmp_path):
    short = min(load_problems(resolve_benchmark("math500")[1]), key=lambda p: len(words(p.question)))
    assert len(words(short.question)) < 13
    src = write_items(tmp_path / "in.jsonl", [(f"First, {short.question} Then add one.", "1")])
    run(DecontaminateConfig(input=src, out=tmp_path / "out.jsonl", benchmarks=("math500",)))
    assert kept_sources(tmp_path / "out.jsonl") == []


def test_a_template_shared_by_three_benchmark_questions_is_not_matched(tmp_path):
    template = "Please answer the following question and put the final answer inside a box at the end"
    bench = tmp_path / "mybench.json"
    questions = [f"{template}. How many {thing} are there in a standard deck of cards?" for thing in "abc"]
    bench.write_text(
        json.dumps([{"prompt": [{"from": "user", "value": q}], "final_answer": "1"} for q in questions])
    )
    src = write_items(tmp_path / "in.jsonl", [(f"{template}. What is 2+2?", "4"), (questions[1], "1")])
    run(DecontaminateConfig(input=src, out=tmp_path / "out.jsonl", benchmarks=(str(bench),)))
    assert kept_sources(tmp_path / "out.jsonl") == ["in.jsonl#0"]
    assert report(tmp_path / "out.jsonl")["template_ngrams"] > 0


def test_an_unknown_benchmark_is_one_error_naming_it(tmp_path):
    src = write_items(tmp_path / "in.jsonl", [(UNRELATED, "1")])
    with pytest.raises(ValueError, match="math5000"):
        run(DecontaminateConfig(input=src, out=tmp_path / "out.jsonl", benchmarks=("math5000",)))
