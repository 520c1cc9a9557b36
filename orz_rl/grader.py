"""ORZ's rule-based math reward: extract the boxed answer, compare it to the truth.

Reward 1 iff the response stopped on a stop string and the last ``\\boxed{..}``
inside the last ``<answer>..</answer>`` equals the ground truth; else 0. No
format bonus, no length penalty (``shared/ORZ_RECIPE.md``).

Equivalence is delegated to ``math-verify`` (Hugging Face's checker) after a
cheap exact-string fast path; a multiple-choice truth (a single letter with
``choices``) compares option letters.
"""

from __future__ import annotations

import re

_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
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


def extract_answer(response: str) -> str | None:
    """The last ``\\boxed{}`` (or ``\\fbox{}``) inside the last ``<answer>`` block.

    Returns ``None`` when there is no answer block, no box in it, or the box's
    braces do not balance.
    """
    blocks = _ANSWER_RE.findall(response)
    if not blocks:
        return None
    block = blocks[-1]
    starts = [block.rfind(opener) + len(opener) for opener in _BOX_OPENERS if opener in block]
    if not starts:
        return None
    content = _balanced_from(block, max(starts))
    return content.strip() if content is not None else None


def _normalise(s: str) -> str:
    return re.sub(r"\s+", "", s).replace("\\!", "").rstrip(".")


def answers_match(predicted: str, truth: str, choices: tuple[tuple[str, str], ...] = ()) -> bool:
    """Whether ``predicted`` is mathematically the same answer as ``truth``."""
    if _normalise(predicted) == _normalise(truth):
        return True
    if choices:
        letter = re.fullmatch(r"\(?([A-Za-z])\)?(?:[.:]?\s.*)?", predicted.strip(), re.DOTALL)
        return bool(letter) and letter.group(1).upper() == truth.strip().upper()
    from math_verify import parse, verify

    try:
        gold = parse(f"${truth}$")
        pred = parse(f"${predicted}$")
        return bool(gold) and bool(pred) and bool(verify(gold, pred))
    except Exception:  # a checker failure is a wrong answer, never a crash
        return False


def math_reward(response: str, stopped: bool, truth: str, choices: tuple[tuple[str, str], ...] = ()) -> float:
    """The ORZ reward of one response."""
    if not stopped:
        return 0.0
    predicted = extract_answer(response)
    if predicted is None:
        return 0.0
    return 1.0 if answers_match(predicted, truth, choices) else 0.0
