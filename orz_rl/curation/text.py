"""One normal form of a question for every comparison ``orz-rl data`` makes.

:func:`normal_form` is what ``dedup`` calls the same text: Unicode NFKC, lower case, no math
delimiters (``$``, ``\\(``, ``\\[``), no LaTeX spacing commands (``\\,`` ``\\;`` ``\\quad`` ``~`` ...),
``\\left`` / ``\\right`` / ``\\dfrac`` spelled plainly, and runs of whitespace as one space, none
beside a symbol. :func:`words` splits the normal form into the tokens that ``dedup``'s shingles
and ``decontaminate``'s n-grams count: runs of letters and digits, and each other character alone
(``x^2+1`` is ``x ^ 2 + 1``), so that spacing and delimiters never decide a match.
"""

from __future__ import annotations

import re
import unicodedata

_DELIMITERS = re.compile(r"\$+|\\[()\[\]]")
_SPACING = re.compile(r"\\(?:[,;:! ]|quad|qquad|hspace\*?\{[^{}]*\}|thinspace|enspace)|~")
_SIZING = re.compile(r"\\(?:left|right|bigg?)(?![a-z])")
_SPACE = re.compile(r"\s+")
_SPACE_BY_SYMBOL = re.compile(r" (?=[^\w ])|(?<=[^\w ]) ")
_WORD = re.compile(r"\w+|[^\w\s]")


def normal_form(text: str) -> str:
    """``text`` as ``dedup`` compares it (the module's docstring lists the rules)."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _DELIMITERS.sub(" ", text)
    text = _SPACING.sub(" ", text)
    text = _SIZING.sub("", text).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = _SPACE.sub(" ", text).strip()
    return _SPACE_BY_SYMBOL.sub("", text)


def words(text: str) -> list[str]:
    """The tokens of ``text``'s normal form: letter-and-digit runs and single symbols."""
    return tokens(normal_form(text))


def tokens(form: str) -> list[str]:
    """The tokens of a text already in :func:`normal_form`."""
    return _WORD.findall(form)
