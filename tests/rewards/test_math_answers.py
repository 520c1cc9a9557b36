"""The math reward's rule: extraction, and equivalence on a table of real answer forms."""

from __future__ import annotations

import random
import time

import pytest

from orz_rl.problems.benchmarks import DATA_DIR
from orz_rl.problems.formats import load_problems
from orz_rl.rewards.answer_spelling import rewrite_spelling, same_units
from orz_rl.rewards.math_answers import answers_match, extract_answer
from orz_rl.rewards.math_grader import MathGrader

OPTIONS = (("A", "a"), ("B", "b"), ("C", "c"), ("D", "d"))

# (predicted, truth, must match?, reason): each reason is a form ORZ's ground truths
# (MATH, AIME, GPQA) or a policy's answers take.
CASES: list[tuple[str, str, bool, str]] = []


def add(reason: str, pairs: list[tuple[str, str, bool]]) -> None:
    CASES.extend((p, t, e, reason) for p, t, e in pairs)


add(
    "integers with thousands commas",
    [
        ("1,000", "1000", True),
        ("1000", "1,000", True),
        ("10,000", "10000", True),
        ("1,000,000", "1000000", True),
        ("12,345", "12345", True),
        ("-2,500", "-2500", True),
        ("1,001", "1000", False),
        ("10,000", "1000", False),
    ],
)
add(
    "fractions in every LaTeX spelling",
    [
        ("\\frac12", "\\frac{1}{2}", True),
        ("\\dfrac{1}{2}", "\\frac{1}{2}", True),
        ("\\tfrac{1}{2}", "\\frac{1}{2}", True),
        ("\\dfrac12", "\\frac{1}{2}", True),
        ("1/2", "\\frac{1}{2}", True),
        ("\\frac{2}{4}", "\\frac{1}{2}", True),
        ("\\frac{-1}{2}", "-\\frac{1}{2}", True),
        ("-\\dfrac{3}{4}", "\\frac{-3}{4}", True),
        ("3/4", "\\frac34", True),
        ("\\frac{7}{3}", "2\\frac{1}{3}", True),
        ("\\frac{1}{3}", "\\frac{1}{2}", False),
        ("\\frac{2}{1}", "\\frac{1}{2}", False),
        ("1/3", "\\dfrac{1}{2}", False),
        ("\\frac{a}{b}", "\\frac{b}{a}", False),
    ],
)
add(
    "decimals against fractions",
    [
        ("0.5", "\\frac{1}{2}", True),
        ("\\frac{1}{4}", "0.25", True),
        ("0.75", "\\frac34", True),
        ("1.5", "\\frac{3}{2}", True),
        ("2.5", "\\frac{5}{2}", True),
        ("0.125", "\\frac{1}{8}", True),
        ("0.2", "\\frac{1}{4}", False),
        ("0.33", "\\frac{1}{3}", False),
        ("1.25", "\\frac{4}{5}", False),
        (".5", "\\frac12", True),
    ],
)
add(
    "square roots",
    [
        ("\\sqrt{2}", "\\sqrt2", True),
        ("\\sqrt{8}", "2\\sqrt{2}", True),
        ("2\\sqrt{2}", "\\sqrt{8}", True),
        ("\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}", True),
        ("\\sqrt{12}", "2\\sqrt{3}", True),
        ("3\\sqrt{2}", "\\sqrt{18}", True),
        ("\\sqrt{3}", "\\sqrt{2}", False),
        ("2\\sqrt{3}", "3\\sqrt{2}", False),
        ("\\sqrt{2}/2", "\\frac{\\sqrt{2}}{2}", True),
        ("\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt{2}}{2}", True),
    ],
)
add(
    "pi",
    [
        ("\\pi", "\\pi", True),
        ("2\\pi", "2 \\pi", True),
        ("\\frac{\\pi}{2}", "\\pi/2", True),
        ("\\frac{3\\pi}{4}", "\\frac34\\pi", True),
        ("\\pi", "2\\pi", False),
        ("3.14", "\\pi", False),
        ("\\frac{\\pi}{3}", "\\frac{\\pi}{6}", False),
        ("4\\pi", "\\pi \\cdot 4", True),
    ],
)
add(
    "degrees",
    [
        ("30^\\circ", "30", True),
        ("30^{\\circ}", "30", True),
        ("30", "30^\\circ", True),
        ("45^\\circ", "45^{\\circ}", True),
        ("120^\\circ", "120", True),
        ("30^\\circ", "45", False),
        ("60", "30^\\circ", False),
        ("90^{\\circ}", "90", True),
    ],
)
add(
    "percentages",
    [
        ("10\\%", "10", True),
        ("10", "10\\%", True),
        ("25\\%", "25", True),
        ("50\\%", "50\\%", True),
        ("12.5\\%", "12.5", True),
        ("10\\%", "20", False),
        ("30", "25\\%", False),
    ],
)
add(
    "an equation against its value",
    [
        ("x=5", "5", True),
        ("x = 5", "5", True),
        ("5", "x=5", True),
        ("y = 7", "7", True),
        ("a=-3", "-3", True),
        ("x=\\frac{1}{2}", "\\frac12", True),
        ("x=6", "5", False),
        ("y = 4", "7", False),
        ("k = 12", "12", True),
    ],
)
add(
    "text units",
    [
        ("5 \\text{ cm}", "5", True),
        ("5\\text{cm}", "5", True),
        ("12 \\text{ inches}", "12", True),
        ("5 \\mbox{ cm}", "5", True),
        ("3 \\text{ meters}", "3", True),
        ("7\\text{ dollars}", "7", True),
        ("5 \\text{ cm}", "6", False),
        ("20 \\text{ feet}", "2", False),
        ("9 \\text{ units}", "9", True),
        ("\\$5", "5", True),
        ("\\$ 12.50", "12.50", True),
    ],
)
add(
    "tuples keep their order",
    [
        ("(1,2)", "(1, 2)", True),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\pi/2)", True),
        ("(3, \\frac{\\pi}{2})", "\\left( 3, \\frac{\\pi}{2} \\right)", True),
        ("(1,2)", "(2,1)", False),
        ("(0, -1)", "(0,-1)", True),
        ("(1, 2, 3)", "(1,2,3)", True),
        ("(1,2,3)", "(3,2,1)", False),
        ("(2, 3)", "(2, 4)", False),
    ],
)
add(
    "intervals keep their brackets",
    [
        ("[1,2)", "[1, 2)", True),
        ("[1,2)", "(1,2)", False),
        ("(-\\infty, 3]", "(-\\infty,3]", True),
        ("(-\\infty, 3)", "(-\\infty, 3]", False),
        ("[0, \\infty)", "[0,\\infty)", True),
        ("(0, 1]", "[0, 1]", False),
        ("[-2, 5]", "[-2,5]", True),
    ],
)
add(
    "sets ignore order",
    [
        ("\\{1,2\\}", "\\{2,1\\}", True),
        ("\\{1, 2, 3\\}", "\\{3, 2, 1\\}", True),
        ("\\{1,2\\}", "\\{1,3\\}", False),
        ("\\{-1, 1\\}", "\\{1, -1\\}", True),
    ],
)
add(
    "matrices",
    [
        ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", True),
        (
            "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
            "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
            True,
        ),
        (
            "\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}",
            "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
            True,
        ),
        (
            "\\begin{pmatrix} 1 & 2 \\\\ 3 & 5 \\end{pmatrix}",
            "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
            False,
        ),
        ("\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", False),
        (
            "\\begin{pmatrix} \\frac{1}{2} \\\\ 0 \\end{pmatrix}",
            "\\begin{pmatrix}0.5\\\\0\\end{pmatrix}",
            True,
        ),
    ],
)
add(
    "infinity",
    [
        ("\\infty", "\\infty", True),
        ("-\\infty", "-\\infty", True),
        ("\\infty", "-\\infty", False),
        ("+\\infty", "\\infty", True),
        ("\\infty", "1000000", False),
    ],
)
add(
    "multiple choice: the option letter",
    [
        ("B", "B", True),
        ("(B)", "B", True),
        ("B. b", "B", True),  # the letter and its option's text (OPTIONS: B is "b")
        ("B. 42 moles", "B", False),  # a text that is not B's: names nothing
        ("b", "B", True),
        ("\\text{(B)}", "B", True),
        ("C", "B", False),
        ("(A)", "B", False),
        ("D", "d", True),
        ("\\textbf{C}", "C", True),
        ("A", "D", False),
    ],
)
add(
    "expressions and exponents",
    [
        ("2^{10}", "1024", True),
        ("1024", "2^{10}", True),
        ("x^2+2x+1", "(x+1)^2", True),
        ("3x+2", "2+3x", True),
        ("x^2-1", "(x-1)(x+1)", True),
        ("2^{10}", "1000", False),
        ("x^2+1", "(x+1)^2", False),
        ("e^{0}", "1", True),
        ("2 \\cdot x", "2x", True),
        ("\\pi r^2", "\\pi r^{2}", True),
        ("\\log_2 8", "3", True),
        ("\\binom{5}{2}", "10", True),
        ("5!", "120", True),
        ("\\frac{10!}{8!}", "90", True),
    ],
)
add(
    "negative numbers and signs",
    [
        ("-5", "-5", True),
        ("- 5", "-5", True),
        ("-5", "5", False),
        ("−5", "-5", True),
    ],
)
add(
    "plain integers (AIME)",
    [
        ("073", "73", True),
        ("73", "73", True),
        ("72", "73", False),
        ("0", "0", True),
        ("902", "902", True),
        ("209", "290", False),
    ],
)
add(
    "trailing punctuation and spacing",
    [
        ("5.", "5", True),
        ("5 ", "5", True),
        (" \\frac{1}{2} ", "\\frac12", True),
        ("\\, 5", "5", True),
        ("5\\!", "5", True),
    ],
)
add(
    "text answers",
    [
        ("\\text{Evelyn}", "\\text{Evelyn}", True),
        ("\\text{(C)}", "\\text{(C)}", True),
        ("\\text{odd}", "\\text{even}", False),
        ("\\text{Monday}", "\\text{Tuesday}", False),
    ],
)

# The general spelling rules (math_answers.rewrite_spelling), written from the families the
# graders in wide use normalise; tests/rewards/data/math_forms_heldout.jsonl is scored apart.
add(
    "spelling: LaTeX-spaced thousands",
    [
        ("1\\,000", "1000", True),
        ("1\\,000\\,000", "1000000", True),
        ("1{,}000", "1000", True),
        ("1\\,001", "1000", False),
    ],
)
add(
    "spelling: unicode symbols",
    [
        ("\u22125", "-5", True),
        ("\u221e", "\\infty", True),
        ("\u221a2", "\\sqrt{2}", True),
        ("3\u03c0", "3\\pi", True),
        ("\u221a3", "\\sqrt{2}", False),
    ],
)
add(
    "spelling: text-wrapped numbers and units",
    [
        ("\\text{1011}_2", "1011_2", True),
        ("\\text{5 cm}", "5", True),
        ("\\text{36 square feet}", "36", True),
        ("1000 dollars", "\\$1000", True),
        ("5 apples", "6", False),
        ("2i", "2", False),
        ("3x", "3", False),
    ],
)
add(
    "spelling: repeating decimals and mixed numbers",
    [
        ("0.\\overline{3}", "\\frac{1}{3}", True),
        ("1.2\\overline{45}", "\\frac{137}{110}", True),
        ("0.\\overline{3}", "0.333", False),
        ("2\\frac{1}{2}", "\\frac{5}{2}", True),
        ("-1\\frac{1}{3}", "-\\frac{4}{3}", True),
        ("2\\frac{1}{2}", "1", False),
    ],
)
add(
    "spelling: number words, e-notation, inequalities as intervals",
    [
        ("five", "5", True),
        ("\\text{Twelve}", "12", True),
        ("six", "5", False),
        ("1.5e3", "1500", True),
        ("x\\le 3", "(-\\infty,3]", True),
        ("x < 3", "(-\\infty,3]", False),
        ("-1 < x \\leq 2", "(-1, 2]", True),
        ("[0,\\infty)", "x\\geq0", True),
    ],
)

add(
    "spelling: bare sqrt and pi, based numbers, word answers, units after a space",
    [
        ("sqrt(2)", "\\sqrt2", True),
        ("2sqrt3", "2\\sqrt{3}", True),
        ("pi/2", "\\frac{\\pi}{2}", True),
        ("1011_{(2)}", "1011_2", True),
        ("1011_{\\text{two}}", "1011_2", True),
        ("13_8", "1011_2", True),
        ("1011_3", "1011_2", False),
        ("The circle", "\\text{circle}", True),
        ("\\text{Even}", "\\text{even}", True),
        ("\\text{no}", "\\text{yes}", False),
        ("5 m/s", "5", True),
        ("12 cm^2", "12", True),
        ("3xy", "3", False),
        ("3x^2", "3", False),
    ],
)

add(
    "spelling: other notations for the same number",
    [
        ("0.\\dot{3}", "\\frac{1}{3}", True),
        ("0.\\dot{1}\\dot{8}", "\\frac{2}{11}", True),
        ("0.(45)", "\\frac{5}{11}", True),
        ("7.2 \\times 10^{-3}", "0.0072", True),
        ("7.2 \\times 10^{-2}", "0.0072", False),
        ("\\num{58500}", "58,500", True),
        ("0b1011", "1011_2", True),
        ("0b1011", "1010_2", False),
        ("seventy-three", "73", True),
        ("one hundred four", "104", True),
        ("one hundred four", "140", False),
        ("\u00bd", "\\frac{1}{2}", True),
        ("{\\color{red}14}", "14", True),
        ("1 \\text{ to } 2", "1:2", True),
        ("2 \\text{ to } 1", "1:2", False),
    ],
)
add(
    "spelling: angles, intervals, vectors, complex numbers, plus-minus",
    [
        ("30^o", "30^\\circ", True),
        ("\\ang{55}", "55^\\circ", True),
        ("]3,4]", "(3,4]", True),
        ("]5,+\\infty[", "(5,\\infty)", True),
        ("[3,4[", "[3,4]", False),
        ("\\{x \\mid 3 < x \\le 4\\}", "(3,4]", True),
        ("|x|<\\sqrt{3}", "(-\\sqrt{3}, \\sqrt{3})", True),
        ("|x|\\le 2", "(-2, 2)", False),
        ("0 \\geq x", "(-\\infty, 0]", True),
        ("\\langle 15,-29\\rangle", "(15,-29)", True),
        ("(-18, -49, 96)", "\\begin{pmatrix} -18 \\\\ -49 \\\\ 96 \\end{pmatrix}", True),
        (
            "-18\\mathbf{i}-49\\mathbf{j}+96\\mathbf{k}",
            "\\begin{pmatrix} -18 \\\\ -49 \\\\ 96 \\end{pmatrix}",
            True,
        ),
        ("(-18, 96, -49)", "\\begin{pmatrix} -18 \\\\ -49 \\\\ 96 \\end{pmatrix}", False),
        ("-2+7\\mathrm{i}", "-2 + 7i", True),
        ("6+9\\cdot i", "6+9i", True),
        ("\\pm 2\\sqrt{2} + 3", "3 \\pm 2 \\sqrt{2}", True),
        ("3+2\\sqrt2", "3\\pm2\\sqrt2", False),
    ],
)
add(
    "spelling: units must agree where both sides name one",
    [
        ("5 \\text{ m/s}", "5 \\text{ km/s}", False),
        ("\\$5.40", "5.4 \\text{ cents}", False),
        ("864 \\text{ in}^2", "864 \\mbox{ inches}^2", True),
        ("15 \\text{ square centimeters}", "15\\mbox{ cm}^2", True),
        ("\\$5", "5 dollars", True),
    ],
)


@pytest.mark.parametrize(
    "predicted,truth,expected,reason", CASES, ids=[f"{r}: {p!r} vs {t!r}" for p, t, _, r in CASES]
)
def test_answer_equivalence_table(predicted, truth, expected, reason):
    choices = OPTIONS if reason.startswith("multiple choice") else ()
    assert answers_match(predicted, truth, choices) is expected


def test_the_table_covers_at_least_150_cases_both_ways():
    assert len(CASES) >= 150
    assert sum(e for _, _, e, _ in CASES) >= 50 and sum(not e for _, _, e, _ in CASES) >= 40


@pytest.mark.parametrize(
    "response,expected",
    [
        (" <answer> \\boxed{5} </answer>", "5"),
        (" <answer> \\boxed{1} then \\boxed{2} </answer>", "2"),  # the last box
        (" <answer> \\boxed{1} </answer> <answer> \\boxed{3} </answer>", "3"),  # in the last block
        (" <answer> \\fbox{7} </answer>", "7"),
        (" <answer> \\boxed{\\frac{1}{\\sqrt{2}}} </answer>", "\\frac{1}{\\sqrt{2}}"),  # nested braces
        (" \\boxed{5} <answer> 5 </answer>", None),  # a box outside the answer block does not count
        (" <answer> \\boxed{5 </answer>", None),  # unbalanced
        (" <answer> 5 </answer>", None),  # no box
        (" \\boxed{5}", None),  # no answer block
    ],
)
def test_extraction_takes_the_last_balanced_box_of_the_last_answer_block(response, expected):
    assert extract_answer(response) == expected


def _eval_problems():
    return [
        p
        for name in ("math500", "aime2024", "gpqa_diamond")
        for p in load_problems(DATA_DIR / f"{name}.json")
    ]


def test_every_orz_eval_item_scores_its_own_answer_1_and_another_items_answer_0():
    problems = _eval_problems()
    assert len(problems) == 728
    rng = random.Random(0)
    by_set = {}
    for p in problems:
        by_set.setdefault(p.choices != (), []).append(p)
    others = []
    for p in problems:
        pool = [q.answer for q in by_set[p.choices != ()] if q.answer.strip() != p.answer.strip()]
        others.append(rng.choice(pool))

    def box(answer: str) -> str:
        return f" reasoning </think> <answer> \\boxed{{{answer}}} </answer>"

    truths, choices = [p.answer for p in problems], [p.choices for p in problems]
    with MathGrader(workers=2, timeout=10.0) as grader:
        own = grader.score([box(p.answer) for p in problems], [True] * 728, truths, choices)
        other = grader.score([box(a) for a in others], [True] * 728, truths, choices)
        assert grader.last_stats["timeouts"] == grader.last_stats["failures"] == 0
    assert [p.answer for p, r in zip(problems, own.tolist(), strict=True) if r != 1] == []
    wrongly = [(p.answer, a) for p, a, r in zip(problems, others, other.tolist(), strict=True) if r != 0]
    assert wrongly == []


@pytest.mark.parametrize(
    "crafted",
    [
        "1" + "ab" * 400 + "!",  # a run of letters after a number: a unit regex must not split it
        "1 " + "ab " * 300 + "!",
        "x<" * 300,
        "\\langle" + "1," * 400,
        "0." + "1" * 900 + "(",
        "(" * 500 + ")" * 400,
        "\\{" * 300 + "x|" + "<" * 200,
    ],
    ids=lambda s: repr(s[:12]),
)
def test_the_spelling_rules_take_linear_time_on_crafted_answers(crafted):
    # Answers up to the grader's 1,000-character cap; a backtracking rule took over a minute on
    # the first (the grader's time limit would then cost every such answer 5 s).
    start = time.perf_counter()
    rewrite_spelling(crafted)
    same_units(crafted, "5 cm")
    assert time.perf_counter() - start < 0.5
