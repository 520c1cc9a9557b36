"""The ORZ prompt template for base models (no chat template), and its stop rule.

The text is copied verbatim from ``docs/orz_recipe.md``; a test renders it
against the string in that file so the two cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from tensordict import TensorDictBase

from orz_rl import keys

_CONVERSATION = (
    "{bos}A conversation between User and Assistant. The User asks a question, and the "
    "Assistant solves it. The Assistant first thinks about the reasoning process in the "
    "mind and then provides the User with the answer. The reasoning process is enclosed "
    "within <think> </think> and answer is enclosed within <answer> </answer> tags, "
    "respectively, i.e., <think> reasoning process here </think> <answer> answer here "
    "</answer>. User: You must put your answer inside <answer> </answer> tags, i.e., "
    "<answer> answer here </answer>. "
)
#: Where the built-in templates' problem begins; a tool instruction goes right before it.
PROBLEM_START = "This is the problem:\n"
_PROBLEM = PROBLEM_START + "{question}\n\nAssistant: <think>"

ORZ_TEMPLATE = (
    _CONVERSATION
    + "And your final answer will be extracted automatically by the \\boxed{{}} tag.\n"
    + _PROBLEM
)

#: The ORZ template for multiple-choice problems (GPQA, MMLU): ORZ's, plus a sentence asking for
#: the option's letter alone in the box, as the truth is (the options are listed in the question).
CHOICE_TEMPLATE = (
    _CONVERSATION
    + "And your final answer will be extracted automatically by the \\boxed{{}} tag. Put only the "
    "letter of the correct option ({letters}) inside \\boxed{{}}.\n" + _PROBLEM
)

#: The ORZ template for programming problems: the same conversation, with the answer a
#: program (ORZ's paper trains on math only; its template's wording is kept where it fits).
CODE_TEMPLATE = (
    _CONVERSATION + "Your answer is one Python program in a ```python code block; it will be extracted "
    "automatically and run on the tests.\n" + _PROBLEM
)

#: ORZ stops generation on any of these and keeps the stop string in the output.
STOP_STRINGS: tuple[str, ...] = ("User:", "Human:", "Assistant:", "</answer>")

#: The end of a tool call: a turn ending on ``<code>...</code>`` runs its program
#: (``orz_rl.envs.python_tool``), whose output comes back as ``<output>...</output>``.
CALL_END = "</code>"
#: The stop strings of a policy that may call the tool: ORZ's, and the end of a call.
TOOL_STOP_STRINGS: tuple[str, ...] = (*STOP_STRINGS, CALL_END)


#: What a prompt with the Python tool adds (:func:`with_tool_instruction`): the call's format.
TOOL_INSTRUCTION = (
    "The Assistant can run Python while it thinks: a program written between <code> and </code> "
    "runs, and what it prints comes back between <output> and </output>.\n"
)


def with_tool_instruction(prompt: str) -> str:
    """``prompt`` with :data:`TOOL_INSTRUCTION` before its problem (:data:`PROBLEM_START`, in
    every built-in template); a prompt of a task's own template, without it, is left as it is."""
    head, start, problem = prompt.rpartition(PROBLEM_START)
    return head + TOOL_INSTRUCTION + start + problem if start else prompt


def render_tool_output(text: str) -> str:
    """The observation a tool call's output ``text`` comes back as, between two model turns."""
    return f"\n<output>\n{text.strip()}\n</output>\n"


#: A tool's output inside a transcript, as :func:`render_tool_output` writes it (one group).
TOOL_OUTPUT = re.compile(r"(\n<output>\n.*?\n</output>\n)", re.DOTALL)


def render_prompt(question: str, bos: str | None = None) -> str:
    """Render the ORZ prompt for ``question``.

    ``bos`` is the tokenizer's BOS text, or ``None`` when it has none (Qwen2.5).
    """
    return ORZ_TEMPLATE.format(bos=bos or "", question=question)


def render_choice_prompt(question: str, letters: Sequence[str], bos: str | None = None) -> str:
    """Render the multiple-choice variant of the ORZ prompt (:data:`CHOICE_TEMPLATE`) for
    ``question``, whose options are labelled ``letters`` (``A, B, C or D``)."""
    letters = list(letters)
    listed = f"{', '.join(letters[:-1])} or {letters[-1]}" if len(letters) > 1 else "".join(letters)
    return CHOICE_TEMPLATE.format(bos=bos or "", question=question, letters=listed)


def render_code_prompt(question: str, bos: str | None = None) -> str:
    """Render the code variant of the ORZ prompt (:data:`CODE_TEMPLATE`) for ``question``."""
    return CODE_TEMPLATE.format(bos=bos or "", question=question)


def as_strings(value: Any) -> list[str]:
    """The strings of a NonTensorStack (or list, or single string) as a list."""
    if isinstance(value, str):
        return [value]
    return value.tolist() if hasattr(value, "tolist") else list(value)


def finish_reasons(td: TensorDictBase, responses: list[str], stop_strings: Sequence[str]) -> list[str]:
    """``"stop"`` or ``"length"`` per response: the backend's own verdict where it gives one
    (vLLM's ``finish_reason``), else ORZ's rule on the text (it ends on a stop string)."""
    if keys.FINISH_REASON in td.keys():
        # A stop string can end inside a token, and the decoded text then runs past it.
        return as_strings(td.get(keys.FINISH_REASON))
    return ["stop" if r.endswith(tuple(stop_strings)) else "length" for r in responses]
