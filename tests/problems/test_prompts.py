"""The ORZ template, rendered against the exact text of docs/orz_recipe.md."""

from __future__ import annotations

import re

import pytest

from orz_rl.problems.prompts import (
    PROBLEM_START,
    STOP_STRINGS,
    TOOL_INSTRUCTION,
    render_choice_prompt,
    render_code_prompt,
    render_prompt,
    with_tool_instruction,
)

from ..conftest import REPO


def _recipe_template() -> str:
    recipe = REPO / "docs" / "orz_recipe.md"
    if not recipe.is_file():
        pytest.fail(f"{recipe} is missing: the template test needs the recipe facts")
    section = recipe.read_text().split("## Prompt template", 1)[1]
    return re.search(r"```\n(.*?)\n```", section, re.DOTALL).group(1)


def test_template_renders_exactly_the_recipe_text():
    expected = _recipe_template().replace("{bos}", "<s>").replace("{question}", "What is 1 + 1?")
    assert render_prompt("What is 1 + 1?", bos="<s>") == expected


def test_template_without_bos_starts_with_the_conversation():
    text = render_prompt("Q?")
    assert text.startswith("A conversation between User and Assistant.")
    assert text.endswith("This is the problem:\nQ?\n\nAssistant: <think>")


def test_stop_strings_are_orz_s():
    assert set(STOP_STRINGS) == {"User:", "Human:", "Assistant:", "</answer>"}


@pytest.mark.parametrize(
    "render", [render_prompt, render_code_prompt, lambda q: render_choice_prompt(q, "ABCD")], ids=str
)
def test_the_tool_instruction_goes_right_before_the_problem_of_every_built_in_template(render):
    plain = render("What is 6 * 7?")
    told = with_tool_instruction(plain)
    assert told == plain.replace(PROBLEM_START, TOOL_INSTRUCTION + PROBLEM_START) != plain
    assert all(tag in TOOL_INSTRUCTION for tag in ("<code>", "</code>", "<output>", "</output>"))


def test_a_prompt_of_ones_own_template_is_left_as_it_is():
    assert with_tool_instruction("Q: 6 * 7?\nA:") == "Q: 6 * 7?\nA:"
