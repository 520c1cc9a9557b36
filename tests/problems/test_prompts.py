"""The ORZ template, rendered against the exact text of docs/orz_recipe.md."""

from __future__ import annotations

import re

import pytest

from orz_rl.problems.prompts import STOP_STRINGS, render_prompt

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
