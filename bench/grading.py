"""Scoring a rollout batch: orz-rl's batch grader against math-verify once per response.

    python bench/grading.py [--data FILE] [--prompts 128] [--samples 64]   (default data: the shipped MATH500)

The batch is ORZ-sized and ORZ-shaped: ``--prompts`` MATH500 questions x
``--samples`` responses each (8,192 by default), every response one of five kinds
drawn at random: right (the truth boxed), reformatted (the truth in another
spelling: ``\\dfrac``, spaces, ``x = ...``), wrong (another item's answer boxed),
unboxed (an answer block with no box) or cut (no stop string). As in training,
the samples of a prompt repeat answers.

The baseline, measured in the same run, is the straightforward loop: for every
response, extract the answer and call math-verify's ``parse`` on the truth and
the answer and ``verify`` on the pair, in this process. The batch grader
(:class:`orz_rl.rewards.math_grader.MathGrader`, one worker per CPU core) decides what
it can in this process and sends each distinct remaining pair to a worker once.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import tyro

from orz_rl.problems.benchmarks import DATA_DIR
from orz_rl.rewards.math_answers import extract_answer
from orz_rl.rewards.math_grader import MathGrader


@dataclass(frozen=True)
class Args:
    """What to benchmark."""

    data: Path = DATA_DIR / "math500.json"
    """ORZ evaluation file whose answers make the responses."""
    prompts: int = 128
    """Distinct questions in the batch (ORZ: 128)."""
    samples: int = 64
    """Responses per question (ORZ: 64)."""
    seed: int = 0
    """Seed of the response mix."""


def reformat(truth: str, rng: random.Random) -> str:
    """The same answer in another common spelling."""
    spellings = [
        truth.replace("\\frac", "\\dfrac"),
        truth.replace(",", ", ").replace("+", " + ").replace("=", " = "),
        f"x = {truth}",
        truth.replace("\\left", "").replace("\\right", ""),
    ]
    return rng.choice(spellings)


def make_batch(truths: list[str], args: Args) -> tuple[list[str], list[bool], list[str]]:
    rng = random.Random(args.seed)
    questions = rng.sample(range(len(truths)), args.prompts)
    responses, stopped, batch_truths = [], [], []
    for q in questions:
        truth = truths[q]
        wrong = [truths[i] for i in rng.sample(range(len(truths)), 3) if truths[i] != truth] or ["0"]
        for _ in range(args.samples):
            kind = rng.choice(["right", "reformatted", "wrong", "unboxed", "cut"])
            answers = {"right": truth, "reformatted": reformat(truth, rng), "wrong": rng.choice(wrong)}
            answer = answers.get(kind)
            if kind == "unboxed":
                text = f" so the answer is {truth} </think> <answer> {truth} </answer>"
            else:
                text = f" reasoning </think> <answer> \\boxed{{{answer or truth}}} </answer>"
            responses.append(text)
            stopped.append(kind != "cut")
            batch_truths.append(truth)
    return responses, stopped, batch_truths


def baseline(responses: list[str], stopped: list[bool], truths: list[str]) -> list[float]:
    from math_verify import parse, verify

    rewards = []
    for response, stop, truth in zip(responses, stopped, truths, strict=True):
        answer = extract_answer(response) if stop else None
        if answer is None:
            rewards.append(0.0)
            continue
        gold, pred = parse(f"${truth}$"), parse(f"${answer}$")
        rewards.append(float(bool(gold) and bool(pred) and verify(gold, pred)))
    return rewards


def main(args: Args) -> None:
    truths = [str(item["final_answer"]) for item in json.loads(args.data.read_text())]
    responses, stopped, batch_truths = make_batch(truths, args)
    workers = os.cpu_count() or 1
    print(f"{len(responses)} responses ({args.prompts} questions x {args.samples}), {workers} workers")

    start = time.perf_counter()
    expected = baseline(responses, stopped, batch_truths)
    base_seconds = time.perf_counter() - start

    with MathGrader(workers=workers) as grader:
        grader.score(["<answer> \\boxed{1} </answer>"], [True], ["\\frac{2}{2}"])  # workers up and warm
        start = time.perf_counter()
        rewards = grader.score(responses, stopped, batch_truths).tolist()
        batch_seconds = time.perf_counter() - start
        stats = dict(grader.last_stats)

    differ = [i for i, (a, b) in enumerate(zip(rewards, expected, strict=True)) if a != b]
    n = len(responses)
    rows = [
        ("math-verify per response, one process", base_seconds, sum(expected) / n),
        (f"orz-rl MathGrader, {workers} workers", batch_seconds, sum(rewards) / n),
    ]
    for name, seconds, mean_reward in rows:
        print(f"{name:40} {seconds:7.2f} s, mean reward {mean_reward:.3f}")
    print(f"ratio baseline / batch: {base_seconds / batch_seconds:.2f}x; verdicts that differ: {len(differ)}")
    for i in differ[:5]:
        verdicts = f"batch {rewards[i]:.0f} baseline {expected[i]:.0f}"
        print(f"  {verdicts}: {responses[i]!r}, truth {batch_truths[i]!r}")
    print("grader counts:", stats)


if __name__ == "__main__":
    main(tyro.cli(Args))
