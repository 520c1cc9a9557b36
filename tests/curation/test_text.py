from orz_rl.curation.text import normal_form, words


def test_normal_form_ignores_case_spacing_delimiters_and_sizing():
    plain = "What is \\frac{1}{2}(x+1) of 10?"
    for spelling in (
        "what is $\\frac{1}{2}(x + 1)$ of 10 ?",
        "What  is \\(\\dfrac{1}{2}\\left(x+1\\right)\\) of\n10?",
        "WHAT IS $$\\tfrac{1}{2}\\,(x\\;+\\quad 1)$$ of~10?",
    ):
        assert normal_form(spelling) == normal_form(plain)


def test_normal_form_keeps_what_changes_the_problem():
    assert normal_form("What is 2+3?") != normal_form("What is 2+4?")
    assert normal_form("the sum of x and y") != normal_form("the sumof x and y")


def test_words_are_letter_digit_runs_and_single_symbols():
    assert words("Find $x^2+10$.") == ["find", "x", "^", "2", "+", "10", "."]
