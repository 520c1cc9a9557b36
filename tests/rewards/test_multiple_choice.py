"""Multiple-choice grading: an answer is right iff it names the true option and no other.

It names an option by its letter (in any common form) or by the option's text; an answer that
names two options (``A and C``, or a text that is also another option's letter) names none.
Checked on every shipped GPQA-Diamond item and on hand-made items built to mislead.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import orz_rl.problems
from orz_rl.envs.math import TASK, render_math
from orz_rl.problems.formats import load_problems
from orz_rl.problems.problem import Problem
from orz_rl.problems.prompts import render_prompt
from orz_rl.rewards.math_answers import answers_match, math_reward, named_option

GPQA = load_problems(Path(orz_rl.problems.__file__).parent / "orz_eval/gpqa_diamond.json")

# The letter alone, as a model boxes it: read as text too, so two options where a text is a letter.
BARE_LETTER_FORMS = ("{}", "({})", "{}.", "\\text{{({})}}", "\\textbf{{{}}}", "\\mathrm{{{}}}")
# The letter marked as a label ("B)") or after a word: the option's letter whatever the texts.
LABEL_FORMS = ("{})", "Option {}", "option ({})", "Answer: {}", "The answer is ({})")
LETTER_FORMS = (*BARE_LETTER_FORMS, *LABEL_FORMS)


def _problem(choices: tuple[tuple[str, str], ...], truth: str) -> Problem:
    listed = "\n".join(f"({letter}) {text}" for letter, text in choices)
    return Problem(f"Which one?\n{listed}", truth, choices)


def _score(answer: str, problem: Problem) -> float:
    """The score of ``answer`` by :func:`answers_match` and by :func:`math_reward` on a full
    response boxing it; the two must agree."""
    matched = answers_match(answer, problem.answer, problem.choices)
    response = f"<think> reasoning </think> <answer> \\boxed{{{answer}}} </answer>"
    reward = math_reward(response, True, problem.answer, problem.choices)
    assert reward == float(matched), (answer, problem.answer)
    return reward


def _text(problem: Problem, letter: str) -> str:
    return dict(problem.choices)[letter]


def _wrong_letters(problem: Problem) -> list[str]:
    return [letter for letter, _ in problem.choices if letter != problem.answer]


def test_gpqa_has_198_items_of_four_options():
    assert len(GPQA) == 198
    assert all([letter for letter, _ in p.choices] == list("ABCD") for p in GPQA)


def test_every_gpqa_item_credits_its_right_letter_in_every_form():
    missed = [
        (p.answer, answer)
        for p in GPQA
        for answer in (
            *(form.format(p.answer) for form in LETTER_FORMS),
            f"{p.answer}. {_text(p, p.answer)}",
            f"({p.answer}) {_text(p, p.answer)}",
        )
        if _score(answer, p) != 1.0
    ]
    assert missed == []


def test_every_gpqa_item_scores_every_wrong_letter_0_in_every_form():
    credited = [
        (p.answer, form.format(letter))
        for p in GPQA
        for letter in _wrong_letters(p)
        for form in LETTER_FORMS
        if _score(form.format(letter), p) != 0.0
    ]
    assert credited == []


def test_every_gpqa_item_credits_its_right_option_text_but_one_that_is_also_a_letter():
    uncredited = [(p.answer, p.choices) for p in GPQA if _score(_text(p, p.answer), p) != 1.0]
    # 197 of 198. The one left is the item whose options are statements d, a, b, c: its right
    # text "c" is also the letter C, so it names two options.
    assert uncredited == [("D", (("A", "d"), ("B", "a"), ("C", "b"), ("D", "c")))]
    # No right text is also another option's text (two items repeat a wrong option's text, and
    # one has texts apart only in case, "L^2" and "l^2": the exact case decides).
    assert [p for p in GPQA if named_option(_text(p, p.answer), p.choices) not in (p.answer, None)] == []


def test_every_gpqa_wrong_option_text_scores_0():
    credited = [
        (p.answer, letter, _text(p, letter))
        for p in GPQA
        for letter in _wrong_letters(p)
        if _score(_text(p, letter), p) != 0.0
    ]
    assert credited == []


def test_a_wrong_letter_followed_by_the_right_text_scores_0_on_every_gpqa_item():
    credited = [
        (p.answer, letter)
        for p in GPQA
        for letter in _wrong_letters(p)
        if _score(f"{letter}. {_text(p, p.answer)}", p) != 0.0
    ]
    assert credited == []


# (name, options, letters whose text names two options, letters whose bare form names two).
HOSTILE: list[tuple[str, tuple[tuple[str, str], ...], set[str], set[str]]] = [
    (
        "texts that start like letters",
        (("A", "A"), ("B", "B only"), ("C", "C. elegans"), ("D", "(D) none")),
        set(),
        set(),
    ),
    (
        "texts that are other options' letters",
        (("A", "C. elegans"), ("B", "B only"), ("C", "A"), ("D", "I and II")),
        {"C"},  # "A" is C's text and the letter A
        {"A"},
    ),
    (
        "texts that are a permutation of the letters",
        (("A", "B"), ("B", "C"), ("C", "D"), ("D", "A")),
        {"A", "B", "C", "D"},
        {"A", "B", "C", "D"},
    ),
    (
        "statements a-d as GPQA lists them",
        (("A", "d"), ("B", "a"), ("C", "b"), ("D", "c")),
        {"A", "B", "C", "D"},  # "d" is A's text and, lower-cased, the letter D
        set(),  # the upper-case letter is the option's: a one-letter text keeps its case
    ),
    (
        "texts that read as a letter and words",
        (("A", "large"), ("B", "A large dog"), ("C", "a decrease"), ("D", "(B) and (C)")),
        {"D"},  # "(B) and (C)" names B and C
        set(),
    ),
    (
        "a letter followed by another option's text",
        (("A", "large"), ("B", "small"), ("C", "none"), ("D", "a large")),
        {"D"},  # "a large" is the letter A and A's text
        set(),
    ),
    (
        "duplicated texts, and texts apart only in case",
        (("A", "4 moles"), ("B", "42 moles"), ("C", "42 Moles"), ("D", "42 moles")),
        {"B", "D"},
        set(),
    ),
    (
        "MMLU-Pro: ten options of Roman numerals",
        (
            ("A", "I only"),
            ("B", "II only"),
            ("C", "III only"),
            ("D", "I and II"),
            ("E", "I and III"),
            ("F", "II and III"),
            ("G", "I, II and III"),
            ("H", "IV only"),
            ("I", "I and IV"),
            ("J", "None of the above"),
        ),
        set(),
        set(),
    ),
    (
        "MMLU-Pro: ten numbers, and the letters as texts",
        (
            ("A", "0.5"),
            ("B", "1"),
            ("C", "J"),
            ("D", "2"),
            ("E", "2.5"),
            ("F", "3"),
            ("G", "(E)"),
            ("H", "4"),
            ("I", "4.5"),
            ("J", "~ 5"),
        ),
        {"C", "G"},
        {"J", "E"},
    ),
]
HOSTILE_ITEMS = [
    pytest.param(_problem(options, truth), truth in texts, truth in bare, id=f"{name}: {truth}")
    for name, options, texts, bare in HOSTILE
    for truth, _ in options
]


@pytest.mark.parametrize("problem,text_names_two,bare_names_two", HOSTILE_ITEMS)
def test_hostile_item_credits_the_right_option_and_never_a_wrong_one(
    problem: Problem, text_names_two: bool, bare_names_two: bool
):
    right = problem.answer
    for form in LABEL_FORMS:
        assert _score(form.format(right), problem) == 1.0, form
    assert _score(f"{right}. {_text(problem, right)}", problem) == 1.0
    assert _score(f"({right}) {_text(problem, right)}", problem) == 1.0
    for form in BARE_LETTER_FORMS:
        assert _score(form.format(right), problem) == (0.0 if bare_names_two else 1.0), form
    assert _score(_text(problem, right), problem) == (0.0 if text_names_two else 1.0)
    for wrong in _wrong_letters(problem):
        for form in LETTER_FORMS:
            assert _score(form.format(wrong), problem) == 0.0, form.format(wrong)
        assert _score(_text(problem, wrong), problem) == 0.0, _text(problem, wrong)
        assert _score(f"{wrong}. {_text(problem, right)}", problem) == 0.0
        assert _score(f"{wrong}. {_text(problem, wrong)}", problem) == 0.0


CHOICES = (("A", "4 moles"), ("B", "42 moles"), ("C", "3.2 \\times 10^{-3} M"), ("D", "~ 0.5"))


@pytest.mark.parametrize(
    "answer",
    [
        "B",
        "b",
        "(B)",
        "(b)",
        "B)",
        "B.",
        "B:",
        "[B]",
        "\\text{(B)}",
        "\\textbf{B}",
        "\\mathrm{B}",
        "\\text{B}.",
        "**B**",
        "$B$",
        "Option B",
        "option (B)",
        "Answer: B",
        "answer: (B)",
        "The answer is B",
        "The correct option is (B)",
        "Choice B",
    ],
)
def test_named_option_reads_the_letter_in_every_common_form(answer):
    assert named_option(answer, CHOICES) == "B"


@pytest.mark.parametrize(
    "answer",
    [
        "B. 42 moles",
        "(B) 42 moles",
        "B) 42 moles",
        "B: 42 moles",
        "B 42 moles",
        "\\text{(B) 42 moles}",
        "(B) $42$ moles",
        "B. 42",  # the beginning of B's text
        "B. 42 moles.",
    ],
)
def test_a_letter_followed_by_its_own_text_names_it(answer):
    assert named_option(answer, CHOICES) == "B"


@pytest.mark.parametrize(
    "answer",
    [
        "B. 4 moles",  # A's text after B's letter
        "(B) 4 moles",
        "B. 7 moles",  # text of no option, against B's
        "B. 42 grams",
    ],
)
def test_a_letter_followed_by_text_that_disagrees_with_its_option_names_nothing(answer):
    assert named_option(answer, CHOICES) is None


@pytest.mark.parametrize(
    "answer,letter",
    [
        ("42 moles", "B"),
        ("42 Moles.", "B"),
        ("\\text{42 moles}", "B"),
        ("42\\text{ moles}", "B"),
        ("$42$ moles", "B"),
        ("42~moles", "B"),
        ("42\\,\\mathrm{moles}", "B"),
        ("(42 moles)", "B"),
        ('"42 moles"', "B"),
        ("3.2 × 10^{-3} M", "C"),
        ("3.2\\times10^{-3}\\ M", "C"),
        ("\\approx 0.5", "D"),
        ("0.5", "D"),
        ("0.50", "D"),
        ("~0.5", "D"),
    ],
)
def test_an_option_text_names_its_option_however_it_is_typeset(answer, letter):
    assert named_option(answer, CHOICES) == letter


@pytest.mark.parametrize(
    "answer,text",
    [
        ("\\dfrac{q}{4\\pi \\epsilon_o r}", "$\\frac{q}{4 \\pi\\epsilon_o r}$"),
        ("\\lambda/a", "λ/a"),
        ("\\left\\langle H\\right\\rangle \\ll \\Delta E", "⟨H⟩ ≪ ΔE"),
        ("x \\le 2", "x ≤ 2"),
        ("v_{max} = c", "v_max=c"),
        ("10^{-3} \\%", "10^-3 %"),
        ("Star3 and Star5", "star3 and star5"),
    ],
)
def test_texts_apart_only_in_typesetting_name_the_same_option(answer, text):
    choices = (("A", "something else"), ("B", text))
    assert named_option(answer, choices) == "B"


def test_texts_apart_only_in_case_are_told_apart_by_their_case():
    # GPQA's item with options "... q/L^2" and "... q/l^2".
    choices = (("A", "E = q/(4 \\pi L^2)"), ("B", "E = q/(4 \\pi l^2)"))
    assert named_option("E = q/(4\\pi L^2)", choices) == "A"
    assert named_option("E = q/(4\\pi l^2)", choices) == "B"


@pytest.mark.parametrize(
    "answer,truth",
    [
        ("A and C", "A"),
        ("A, B", "B"),
        ("(A) or (B)", "A"),
        ("B/C", "B"),
        ("A & B", "A"),
        ("\\text{A and C}", "C"),
        ("both A and B", "A"),
        ("A, B, and C", "C"),
        ("A or Z", "A"),
    ],
)
def test_an_answer_naming_two_options_scores_0(answer, truth):
    problem = _problem(CHOICES, truth)
    assert named_option(answer, CHOICES) is None
    assert _score(answer, problem) == 0.0


@pytest.mark.parametrize("answer", ["E", "(Z)", "Option F", "z", "\\textbf{E}"])
def test_a_letter_outside_the_choices_scores_0(answer):
    assert named_option(answer, CHOICES) is None
    assert _score(answer, _problem(CHOICES, "B")) == 0.0


@pytest.mark.parametrize("answer", ["", "   ", "\\text{}", "$$", "B is not it", "42", "moles"])
def test_an_answer_naming_no_option_scores_0(answer):
    assert named_option(answer, CHOICES) is None
    assert _score(answer, _problem(CHOICES, "B")) == 0.0


def test_wrong_option_text_that_looks_like_a_letter_scores_0():
    # Before, "A large ..." read as the letter A: 20 wrong GPQA texts scored 1 that way.
    choices = (("A", "4 moles"), ("B", "A large increase"), ("C", "C. elegans"), ("D", "I only"))
    for truth, wrong_text in (("A", "A large increase"), ("C", "I only"), ("A", "C. elegans")):
        assert _score(wrong_text, _problem(choices, truth)) == 0.0, wrong_text
    assert _score("C. elegans", _problem(choices, "C")) == 1.0
    assert _score("A large increase", _problem(choices, "B")) == 1.0


def test_a_truth_in_another_letter_form_is_read_as_the_letter():
    for truth in ("B", "(B)", " b ", "B."):
        assert answers_match("42 moles", truth, CHOICES)
        assert answers_match("(B)", truth, CHOICES)


def test_a_choices_problem_renders_asking_for_the_letter():
    problem = GPQA[0]
    prompt = render_math(problem, "<s>")
    sentence = " Put only the letter of the correct option (A, B, C or D) inside \\boxed{}."
    assert sentence + "\nThis is the problem:\n" + problem.question + "\n\nAssistant: <think>" in prompt
    # Else ORZ's template, word for word.
    assert prompt.replace(sentence, "", 1) == render_prompt(problem.question, "<s>")
    assert TASK.render(problem, None) == render_math(problem)


def test_a_ten_option_problem_lists_its_ten_letters():
    problem = _problem(HOSTILE[-1][1], "A")
    assert "(A, B, C, D, E, F, G, H, I or J)" in render_math(problem)


def test_a_problem_without_choices_renders_exactly_as_before():
    problem = Problem("What is 5 + 7?", "12")
    assert render_math(problem, "<s>") == render_prompt(problem.question, "<s>")
    assert render_math(problem) == render_prompt(problem.question)
    assert "letter" not in render_math(problem)


def test_every_published_layout_fixture_item_grades_letters_and_texts_right(tmp_path):
    # The multiple-choice items of tests/problems/published_rows.py (GPQA's CSV shuffled, MMLU's
    # index, the original MMLU CSV with "None"/"NA"/"nan" options, MMLU-Pro's ten options), loaded
    # from their published layouts.
    from orz_rl.problems.formats import load_any_problems
    from tests.problems import published_rows as rows

    files = [
        rows.write(tmp_path / "gpqa_diamond.csv", rows.GPQA),
        rows.write(tmp_path / "mmlu.parquet", rows.MMLU),
        rows.write(tmp_path / "high_school_test.csv", rows.MMLU_CSV),
        rows.write(tmp_path / "mmlu_pro.parquet", rows.MMLU_PRO),
    ]
    problems = [p for path in files for p in load_any_problems(path)]
    assert len(problems) == 8 and all(p.choices for p in problems)
    for p in problems:
        assert _score(p.answer, p) == 1.0 and _score(f"({p.answer})", p) == 1.0
        assert _score(_text(p, p.answer), p) == 1.0, (p.question, _text(p, p.answer))
        for letter in _wrong_letters(p):
            assert _score(letter, p) == 0.0 and _score(_text(p, letter), p) == 0.0, (p.question, letter)
