"""ORZ's rule-based math reward: extract the boxed answer, compare it to the truth.

Reward 1 iff the response stopped on a stop string and the last ``\\boxed{..}``
inside the last ``<answer>..</answer>`` equals the ground truth; else 0. No
format bonus, no length penalty (``docs/orz_recipe.md``). Batches are scored
by :class:`orz_rl.rewards.math_grader.MathGrader`, which runs :func:`answers_match` in
worker processes with a time limit.

Equivalence, rule by rule (``tests/rewards/test_math_answers.py`` holds a case for each):

* exact after normalisation (spaces, ``\\!``, a final full stop): ``\\frac{1} {2}.`` = ``\\frac{1}{2}``;
* a final percent sign is dropped, as ORZ's truths write percentages: ``10\\%`` = ``10``;
* plain numbers compare by value, thousands commas allowed: ``1,000`` = ``1000``, ``0.50`` = ``.5``;
* a multiple-choice truth (GPQA: a letter, with ``choices``) compares option
  letters, in parentheses, with the option text, or wrapped: ``(B)``, ``B. 42 moles``,
  ``\\text{(B)}`` = ``B``;
* then, unless the units after two numbers differ (``5 m/s`` != ``5 km/s``), both sides are
  respelled (:func:`~orz_rl.rewards.answer_spelling.rewrite_spelling`: wrappers, Unicode,
  units, repeating decimals, mixed numbers, number words, bases, vectors, ratios, inequalities
  and French intervals, each family with an example in that module's table of tests) and
  compared again, two based numbers by value (``13_8`` = ``1011_2``);
* everything else goes to ``math-verify``, which equates fractions in every
  spelling (``\\dfrac12`` = ``1/2`` = ``0.5``), roots (``\\sqrt{8}`` = ``2\\sqrt{2}``),
  ``\\pi`` forms (``\\frac{\\pi}{2}`` = ``\\pi/2``), degrees (``30^\\circ`` = ``30``),
  an equation and its value (``x = 5`` = ``5``), text units (``5 \\text{ cm}`` =
  ``5``), tuples in order (``(1,2)`` != ``(2,1)``), intervals with their brackets
  (``[1,2)`` != ``(1,2)``), sets in any order (``\\{1,2\\}`` = ``\\{2,1\\}``), matrices
  entry by entry, ``\\infty``, and expressions by value (``2^{10}`` = ``1024``).
"""

from __future__ import annotations

import functools
import logging
import re
from decimal import Decimal

from orz_rl.rewards.answer_spelling import rewrite_spelling, same_based_number, same_units


@functools.cache
def _quiet_math_verify() -> None:
    # math-verify warns at every call that its timeouts are off: the caller bounds the time.
    logging.getLogger("math_verify").setLevel(logging.ERROR)


_BOX_OPENERS = ("\\boxed{", "\\fbox{")


def _balanced_from(text: str, start: int) -> str | None:
    """Content of the brace group whose ``{`` is at ``start - 1``; ``None`` if unbalanced."""
    depth = 1
    for i in range(start, len(text)):
        c = text[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start:i]
    return None


def last_answer_block(response: str) -> str | None:
    """The text of the last closed ``<answer>...</answer>`` block, or ``None``."""
    # Two reverse scans, linear in the response: a regex over every "<answer>"
    # opening would be quadratic on a response that opens many and closes none.
    end = response.rfind("</answer>")
    start = response.rfind("<answer>", 0, max(end, 0))
    if end < 0 or start < 0:
        return None
    return response[start + len("<answer>") : end]


def extract_answer(response: str) -> str | None:
    """The last ``\\boxed{}`` (or ``\\fbox{}``) inside the last ``<answer>`` block.

    Returns ``None`` when there is no answer block, no box in it, or the box's
    braces do not balance.
    """
    block = last_answer_block(response)
    return last_boxed(block) if block is not None else None


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{}`` (or ``\\fbox{}``) in ``text``; ``None`` when there is
    none or its braces do not balance (a worked solution's final answer, as MATH writes it)."""
    starts = [text.rfind(opener) + len(opener) for opener in _BOX_OPENERS if opener in text]
    if not starts:
        return None
    content = _balanced_from(text, max(starts))
    return content.strip() if content is not None else None


def _without_percent(s: str) -> str:
    """Without a final percent sign: ORZ's ground truths write 10\\% as 10."""
    return re.sub(r"\s*\\?%\s*$", "", s.strip())


def _normalise(s: str) -> str:
    """For exact comparison: no spaces, ``\\!``, final full stop or percent sign."""
    return _without_percent(re.sub(r"\s+", "", s).replace("\\!", "").rstrip("."))


_OPTION_RE = re.compile(r"\(?([A-Za-z])\)?(?:[.:]?\s.*)?", re.DOTALL)
# \text{(B)}, \textbf{C}, \mathrm{D}: the letter inside.
_TEXT_WRAPPER_RE = re.compile(r"\\(?:text|textbf|textrm|mathrm|mathbf)\{([^{}]*)\}")


# A plain decimal number, thousands separated by commas or not, maybe in e-notation: "1,000",
# "-3", "0.50", "1.5e3".
_NUMBER_RE = re.compile(r"[-+]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?")


def _plain_number(s: str) -> Decimal | None:
    s = _normalise(s)
    return Decimal(s.replace(",", "")) if _NUMBER_RE.fullmatch(s) else None


def quick_verdict(predicted: str, truth: str, choices: tuple[tuple[str, str], ...] = ()) -> bool | None:
    """The verdict where no symbolic checker is needed, else ``None``.

    * Equal after whitespace normalisation: right.
    * A multiple-choice truth (a letter with ``choices``): the option letters
      decide, e.g. ``(B)`` or ``B. the text`` against ``B``.
    * Both plain decimal numbers: their values decide, e.g. ``1,000`` = ``1000``
      and ``0.50`` = ``.5``, but ``7`` != ``8`` (AIME's answers are all integers).
    """
    if _normalise(predicted) == _normalise(truth):
        return True
    if choices:
        letter = _OPTION_RE.fullmatch(_TEXT_WRAPPER_RE.sub(r"\1", predicted).strip())
        return bool(letter) and letter.group(1).upper() == truth.strip().upper()
    pred_value, truth_value = _plain_number(predicted), _plain_number(truth)
    if pred_value is not None and truth_value is not None:
        return pred_value == truth_value
    return None


@functools.lru_cache(maxsize=4096)
def _parse_truth(truth: str):
    from math_verify import parse

    _quiet_math_verify()
    # No signal-based timeout: the caller bounds the time (a worker that runs past
    # its limit is killed), and signals do not interrupt C-level arithmetic anyway.
    return parse(f"${truth}$", parsing_timeout=None)


def truth_parses(truth: str) -> bool:
    """Whether ``math-verify`` reads a mathematical object in ``truth`` as :func:`answers_match`
    parses it (its parse always holds the text as well; a truth with nothing more, such as
    ``\\frac{`` or ``???``, is graded by exact matches alone). Unbounded in time on hostile
    input, as :func:`answers_match`."""
    try:
        return any(not isinstance(value, str) for value in _parse_truth(_without_percent(truth)))
    except Exception:
        return False


def is_plain_number(s: str) -> bool:
    """Whether ``s`` is a plain decimal number, which compares by value without a parser."""
    return _plain_number(s) is not None


def answers_match(predicted: str, truth: str, choices: tuple[tuple[str, str], ...] = ()) -> bool:
    """Whether ``predicted`` is mathematically the same answer as ``truth``.

    Unbounded in time on hostile input: score batches with
    :class:`orz_rl.rewards.math_grader.MathGrader`, which runs this in worker processes.
    """
    verdict = quick_verdict(predicted, truth, choices)
    if verdict is not None:
        return verdict
    if not choices:
        if not same_units(predicted, truth):
            return False
        predicted, truth = rewrite_spelling(predicted), rewrite_spelling(truth)
        verdict = quick_verdict(predicted, truth)
        if verdict is None:
            verdict = same_based_number(predicted, truth)
        if verdict is not None:
            return verdict
    from math_verify import parse, verify

    _quiet_math_verify()
    try:
        gold = _parse_truth(_without_percent(truth))
        pred = parse(f"${_without_percent(predicted)}$", parsing_timeout=None)
        return bool(gold) and bool(pred) and bool(verify(gold, pred, timeout_seconds=None))
    except Exception:  # a checker failure is a wrong answer, never a crash
        return False


def math_reward(response: str, stopped: bool, truth: str, choices: tuple[tuple[str, str], ...] = ()) -> float:
    """The ORZ reward of one response, checked in this process (no time limit)."""
    if not stopped:
        return 0.0
    predicted = extract_answer(response)
    if predicted is None:
        return 0.0
    return 1.0 if answers_match(predicted, truth, choices) else 0.0
