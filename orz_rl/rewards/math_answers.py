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
* a multiple-choice truth (GPQA: a letter, with ``choices``) is matched by an answer that names
  that option and no other (:func:`named_option`), by its letter in any common form (``(B)``,
  ``\\text{(B)}``, ``Option B``), by its text (``42 moles``), or both where they agree
  (``B. 42 moles``); a wrong option's text never matches, whatever letter it looks like, and
  ``A and C`` names no option (cases: ``tests/rewards/test_multiple_choice.py``);
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
import unicodedata
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


# A plain decimal number, thousands separated by commas or not, maybe in e-notation: "1,000",
# "-3", "0.50", "1.5e3".
_NUMBER_RE = re.compile(r"[-+]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?")


def _plain_number(s: str) -> Decimal | None:
    s = _normalise(s)
    return Decimal(s.replace(",", "")) if _NUMBER_RE.fullmatch(s) else None


# Multiple choice. An answer names an option by its letter or by its text; what both sides
# are compared as is the option text after :func:`_option_key`.

Choices = tuple[tuple[str, str], ...]

_GREEK = dict(
    zip(
        "αβγδεζηθικλμνξπρςστυφχψωΓΔΘΛΞΠΣΥΦΨΩ",
        "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma sigma tau "
        "upsilon phi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega".split(),
        strict=True,
    )
)
# What Unicode writes for a LaTeX command (a dataset's text or a model's), as that command.
_UNICODE_TEX = str.maketrans(
    {
        **{letter: f"\\{name} " for letter, name in _GREEK.items()},
        "ϕ": "\\phi ",
        "ϵ": "\\epsilon ",
        "ϑ": "\\theta ",
        "ℏ": "\\hbar ",
        "ħ": "\\hbar ",
        "−": "-",
        "–": "-",
        "—": "-",
        "‐": "-",
        "‑": "-",
        "×": "\\times ",
        "·": "\\cdot ",
        "⋅": "\\cdot ",
        "÷": "\\div ",
        "±": "\\pm ",
        "∓": "\\mp ",
        "≈": "\\approx ",
        "∼": "\\sim ",
        "≤": "\\leq ",
        "≥": "\\geq ",
        "≠": "\\neq ",
        "≪": "\\ll ",
        "≫": "\\gg ",
        "→": "\\rightarrow ",
        "←": "\\leftarrow ",
        "↔": "\\leftrightarrow ",
        "⇌": "\\rightleftharpoons ",
        "∞": "\\infty ",
        "√": "\\sqrt ",
        "∑": "\\sum ",
        "∫": "\\int ",
        "∂": "\\partial ",
        "∇": "\\nabla ",
        "⟨": "\\langle ",
        "⟩": "\\rangle ",
        "°": "^\\circ ",
        "²": "^2",
        "³": "^3",
        "‘": "'",
        "’": "'",
        "“": '"',
        "”": '"',
        "…": "...",
    }
)
# LaTeX commands that spell the same thing, as one of them ("" drops the command).
_TEX_SYNONYMS = {
    "dfrac": "\\frac",
    "tfrac": "\\frac",
    "le": "\\leq",
    "leqslant": "\\leq",
    "ge": "\\geq",
    "geqslant": "\\geq",
    "ne": "\\neq",
    "to": "\\rightarrow",
    "longrightarrow": "\\rightarrow",
    "gets": "\\leftarrow",
    "varepsilon": "\\epsilon",
    "varphi": "\\phi",
    "vartheta": "\\theta",
    "ldots": "...",
    "dots": "...",
    "cdots": "...",
    "degree": "^\\circ",
    "lvert": "|",
    "rvert": "|",
    "vert": "|",
    "lbrace": "\\{",
    "rbrace": "\\}",
    "quad": " ",
    "qquad": " ",
    **dict.fromkeys(
        ("left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr", "biggl", "biggr"), ""
    ),
    **dict.fromkeys(("Biggl", "Biggr", "displaystyle", "textstyle", "limits", "nolimits"), ""),
}
_TEX_COMMAND_RE = re.compile(r"\\([A-Za-z]+)")
# \text{(B)}, \textbf{C}, \mathrm{D}, \ce{H2O}: the content (innermost first, so nesting unwraps).
_TEXT_WRAPPER_RE = re.compile(
    r"\\(?:text|textbf|textit|textrm|textsf|texttt|textnormal|textup|emph|mbox|hbox|mathrm|mathbf"
    r"|mathit|mathsf|mathtt|mathnormal|boldsymbol|bm|operatorname|ce)\s*\{([^{}]*)\}"
)
# Leading words that say "about": a model drops GPQA's "~ 3.2" tilde, or writes "\approx 3.2".
_ABOUT_RE = re.compile(
    r"(?:\\(?:approx|sim|simeq)(?![A-Za-z])|approximately\b|approx\.?|about\b|around\b|roughly\b)\s*",
    re.IGNORECASE,
)
# "Answer: B", "the correct option is (B)", "Option B", "both A and C": what comes before a letter.
_LEAD_RE = re.compile(
    r"(?:(?:the|my)\s+)?(?:(?:final|correct|right|best)\s+)*(?:answer|option|choice)s?\b\s*(?:is\b)?"
    r"\s*[:=]?\s*|(?:both|either)\s+",
    re.IGNORECASE,
)
# A letter alone: B, (B), [B], B), B., B:.
_BARE_LETTER_RE = re.compile(r"[(\[{]?\s*([A-Za-z])\s*[)\]}]?\s*[.:]?")
# A letter that starts an answer, maybe followed by text: "(B) 42 moles", "B. 42 moles", "B".
_LETTER_HEAD_RE = re.compile(
    r"\(\s*([A-Za-z])\s*\)|\[\s*([A-Za-z])\s*\]|\{\s*([A-Za-z])\s*\}|([A-Za-z])(?![A-Za-z0-9_'])"
)
_AFTER_LETTER_RE = re.compile(r"\s*(?:[.:)\]]+|-(?=\s))?\s*")
# What joins the letters of an answer naming several options: "A and C", "A, B", "B/C".
_LETTERS_JOINED_RE = re.compile(r"\s*(?:(?:\\?[,;/&+]|\band\b|\bor\b)\s*)+", re.IGNORECASE)


def _plain(s: str) -> str:
    """``s`` without its typesetting: Unicode spelled as LaTeX, synonymous commands as one,
    ``$`` and ``\\(..\\)`` gone, ``\\text{..}``-style wrappers unwrapped, ``\\left``/``\\right``
    and spacing commands gone, markdown bold and code marks gone, whitespace collapsed."""
    s = unicodedata.normalize("NFKC", s.translate(_UNICODE_TEX)).translate(_UNICODE_TEX)
    s = re.sub(r"\\?\$|\\[()\[\]]", " ", s.replace("\\\\", " "))
    s = _TEX_COMMAND_RE.sub(lambda m: _TEX_SYNONYMS.get(m.group(1), m.group(0)), s)
    previous = None
    while previous != s:
        previous, s = s, _TEXT_WRAPPER_RE.sub(r"\1", s)
    s = re.sub(r"\\[,;:! ]|~", " ", s).replace("\\%", "%").replace("**", "").replace("`", "")
    return re.sub(r"\s+", " ", s).strip()


def _wrapped(s: str, opening: str, closing: str) -> bool:
    """Whether one bracket pair encloses all of ``s``: ``(a+b)``, not ``(a)(b)``."""
    if len(s) < 2 or s[0] != opening or s[-1] != closing:
        return False
    depth = 0
    for i, c in enumerate(s):
        depth += (c == opening) - (c == closing)
        if depth == 0 and i < len(s) - 1:
            return False
    return depth == 0


def _keep_space(m: re.Match[str]) -> str:
    """A space between two letters (``I and II``, ``\\pi r``); nothing elsewhere (``x = 5``)."""
    before, after = m.string[m.start() - 1 : m.start()], m.string[m.end() : m.end() + 1]
    return " " if before.isalpha() and after.isalpha() else ""


@functools.lru_cache(maxsize=8192)
def _option_key(text: str) -> tuple[str, str]:
    """An option text (or an answer) as compared: ``(with its case, case-folded)``.

    :func:`_plain`, then without a leading "about" (``~ 3.2``, ``\\approx 3.2``), braces around
    a word or number after ``^`` or ``_`` (``v_{max}``, ``10^{-3}``), spaces but those between
    two letters, a final full stop, comma or ellipsis, and enclosing parentheses, brackets or
    quotes. A one-letter text keeps its case when folded: the case is what tells a statement
    ``d`` from an option letter ``D``.
    """
    s = _plain(text)
    about = _ABOUT_RE.match(s)
    s = s[about.end() :] if about else s
    s = re.sub(r"([\^_])\{\s*([-+]?[\w.]+|\\circ)\s*\}", r"\1\2", s)
    s = re.sub(r"\s+", _keep_space, s)
    previous = None
    while previous != s:
        previous, s = s, s.rstrip(".,;").strip()
        if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'":
            s = s[1:-1].strip()
        for opening, closing in ("()", "[]", "{}"):
            if _wrapped(s, opening, closing):
                s = s[1:-1].strip()
    return s, s if len(s) == 1 and s.isalpha() else s.casefold()


def _same_text(a: str, b: str) -> bool:
    """Equal keys, or plain numbers of equal value (``3.20`` = ``3.2``)."""
    if not a or not b:
        return False
    if a == b:
        return True
    return bool(_NUMBER_RE.fullmatch(a) and _NUMBER_RE.fullmatch(b)) and _number(a) == _number(b)


def _number(s: str) -> Decimal:
    return Decimal(s.replace(",", ""))


def _options_with_text(key: tuple[str, str], keys: dict[str, tuple[str, str]]) -> set[str]:
    """The options whose text ``key`` is; where several fold to it (``L^2``, ``l^2``), the one it
    equals with its case, if there is exactly one."""
    folded = {letter for letter, own in keys.items() if _same_text(own[1], key[1])}
    if len(folded) > 1:
        exact = {letter for letter in folded if _same_text(keys[letter][0], key[0])}
        if len(exact) == 1:
            return exact
    return folded


def _options_by_letter(plain: str, keys: dict[str, tuple[str, str]]) -> set[str]:
    """The options an answer names by letter (upper case): one for ``(B)`` or ``B. <B's text>``,
    all that are written for ``A and C``, none for a letter whose text disagrees with its option's."""
    for _ in range(3):
        lead = _LEAD_RE.match(plain)
        if lead is None or lead.end() == len(plain):
            break
        plain = plain[lead.end() :]
    pieces = [piece for piece in _LETTERS_JOINED_RE.split(plain) if piece]
    if len(pieces) > 1 and all(_BARE_LETTER_RE.fullmatch(piece) for piece in pieces):
        return {_BARE_LETTER_RE.fullmatch(piece).group(1).upper() for piece in pieces}
    head = _LETTER_HEAD_RE.match(plain)
    if head is None:
        return set()
    letter = next(group for group in head.groups() if group).upper()
    if letter not in keys:
        return set()
    rest = plain[head.end() :]
    rest = rest[_AFTER_LETTER_RE.match(rest).end() :]
    rest_key = _option_key(rest)
    if not rest_key[1]:
        return {letter}
    named = _options_with_text(rest_key, keys)
    if letter in named:
        return {letter}
    if named:  # "B. <C's text>"
        return {letter} | named
    return {letter} if keys[letter][1].startswith(rest_key[1]) else set()


def named_option(predicted: str, choices: Choices) -> str | None:
    """The letter of the one option that ``predicted`` (a boxed answer) names, else ``None``.

    An answer names an option by its text (after :func:`_option_key`), or by its letter in any
    common form (``B``, ``(B)``, ``\\textbf{B}``, ``Option B``), or by both (``B. 42 moles``, where
    the text must agree with option B's: equal to it, or its beginning). Text is read before
    letters, so a wrong option's text is never credited whatever it looks like (an option
    ``C. elegans``), and an answer naming two options is ``None``: ``A and C``, ``B. <C's text>``,
    an option's text that is also another option's text, or one that also reads as another
    option's letter (options ``A. d`` ... ``D. c``: ``c`` is D's text and the letter C). A letter
    not among the choices names nothing.
    """
    keys: dict[str, tuple[str, str]] = {}
    labels: dict[str, str] = {}
    for label, text in choices:
        letter = label.strip().strip("()").strip()
        keys[letter.upper()], labels[letter.upper()] = _option_key(text), letter
    plain = _plain(predicted)
    if not plain:
        return None
    named = _options_with_text(_option_key(predicted), keys) | _options_by_letter(plain, keys)
    return labels.get(next(iter(named))) if len(named) == 1 else None


def _truth_letter(truth: str, choices: Choices) -> str | None:
    """The option letter of a multiple-choice truth (``B``, ``(b)``), upper case; a truth that is
    an option's text stands for that option."""
    bare = _BARE_LETTER_RE.fullmatch(truth.strip())
    if bare is not None:
        return bare.group(1).upper()
    named = named_option(truth, choices)
    return named.upper() if named is not None else None


def quick_verdict(predicted: str, truth: str, choices: tuple[tuple[str, str], ...] = ()) -> bool | None:
    """The verdict where no symbolic checker is needed, else ``None``.

    * Equal after whitespace normalisation: right.
    * A multiple-choice truth (a letter with ``choices``): whether the answer names that
      option and no other (:func:`named_option`), by letter (``(B)``) or text; no checker.
    * Both plain decimal numbers: their values decide, e.g. ``1,000`` = ``1000``
      and ``0.50`` = ``.5``, but ``7`` != ``8`` (AIME's answers are all integers).
    """
    if choices:
        named, truth_letter = named_option(predicted, choices), _truth_letter(truth, choices)
        return named is not None and named.upper() == truth_letter
    if _normalise(predicted) == _normalise(truth):
        return True
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
