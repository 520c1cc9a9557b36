"""One spelling for the many ways a model writes the same final answer, before it is compared.

The families are the ones the graders in wide use normalise (Minerva's rules in
lm-evaluation-harness, Qwen2.5-Math's grader, verl's ``prime_math`` and ``math_dapo``, OpenRLHF's
``math_utils``), written as general rules rather than as the cases of one table: typography that
carries no value (Unicode symbols, LaTeX spacing and colour, ``\\text{}`` wrappers, siunitx),
numbers in other notations (repeating decimals, mixed numbers, e-notation and ``\\times 10^k``,
number words, ``0b1011``), units after a number, French and set-builder intervals, inequalities
as intervals, vectors in any bracket, ratios in words. :func:`rewrite_spelling` applies them to
one side; :func:`same_units` and :func:`same_based_number` decide what the rewriting cannot.

Each rule keeps the value: where a rewriting would need the question (``36`` cents or dollars?),
it is not made. ``tests/rewards/test_math_answers.py`` holds a case of each family;
``tests/rewards/data/math_forms_heldout*.jsonl`` are scored apart.
"""

from __future__ import annotations

import re
from fractions import Fraction

_UNICODE = {
    "\u2212": "-",  # minus sign
    "\u2013": "-",  # en dash
    "\u221e": "\\infty ",
    "\u03c0": "\\pi ",
    "\u00d7": "\\times ",
    "\u22c5": "\\cdot ",
    "\u00b7": "\\cdot ",
    "\u2264": "\\le ",
    "\u2265": "\\ge ",
    "\u00f7": "/",
    "\u00b0": "^\\circ",
    "\u00b1": "\\pm ",
    "\u2213": "\\mp ",
}
_VULGAR = {"½": (1, 2), "⅓": (1, 3), "⅔": (2, 3), "¼": (1, 4), "¾": (3, 4), "⅕": (1, 5), "⅖": (2, 5)}
_VULGAR |= {"⅗": (3, 5), "⅘": (4, 5), "⅙": (1, 6), "⅚": (5, 6), "⅛": (1, 8), "⅜": (3, 8), "⅝": (5, 8)}
_VULGAR |= {"⅞": (7, 8)}
_UNICODE |= {k: f"\\frac{{{n}}}{{{d}}}" for k, (n, d) in _VULGAR.items()}
_UNICODE_RE = re.compile("|".join(map(re.escape, _UNICODE)))
# "√2", "√{x+1}", "√(x+1)": the radicand is the next number, letter or group.
_ROOT_RE = re.compile(r"\u221a\s*(\d+(?:\.\d+)?|[A-Za-z]|\{[^{}]*\}|\([^()]*\))")
# sqrt(2), sqrt{2}, sqrt2 and pi written without the backslash.
_BARE_ROOT_RE = re.compile(r"(?<![A-Za-z\\])sqrt\s*(?:\(([^()]*)\)|\{([^{}]*)\}|(\d+|[A-Za-z]))")
_BARE_PI_RE = re.compile(r"(?<![A-Za-z\\])pi(?![A-Za-z])")
# Colour and siunitx: \color{red}14, \textcolor{red}{14}, \num{58500}, \ang{55}.
_COLOR_RE = re.compile(r"\\color\{[^{}]*\}|\\textcolor\{[^{}]*\}")
_NUM_RE = re.compile(r"\\num\{([^{}]*)\}")
_ANG_RE = re.compile(r"\\ang\{([^{}]*)\}")
# 30^o, 30^{o}: a degree sign written as a letter o.
_DEGREE_O_RE = re.compile(r"\^\s*\{?\s*o\s*\}?(?![A-Za-z])")
# Thousands separated by a LaTeX space or brace comma ("1\,000", "1{,}000", "1,\!000"): unambiguous.
_SEPARATED_RE = re.compile(r"(?<![\d.])\d{1,3}(?:(?:\\[,;:! ]|\{,\}|,\\!|~)\d{3})+(?![\d])")
_SEPARATOR_RE = re.compile(r"\\[,;:! ]|\{,\}|,\\!|~")
# \text{1011}_2, \mathrm{12}, \mathrm{i}: a number or one letter written as text.
_TEXT_ATOM_RE = re.compile(r"\\(?:text|mathrm|textrm|mbox)\{\s*([-+]?\d+(?:\.\d+)?|[A-Za-z])\s*\}")
# The whole answer in one \text{} (or \mathrm{}, \textbf{}, \mbox{}): its content.
_WRAPPED_RE = re.compile(r"\\(?:text|textbf|textrm|mathrm|mbox)\{([^{}]*)\}")
# Repeating decimals: 0.\overline{3}, 1.2\overline{45}, 0.(45), 0.\dot{1}\dot{8} (dots over the
# period's first and last digits), 0.1\dot{6}.
_OVERLINE_RE = re.compile(r"([-+]?)(\d*)\.(\d*)\\overline\{(\d+)\}")
_PAREN_PERIOD_RE = re.compile(r"([-+]?)(\d*)\.(\d*)\((\d+)\)")
_DOT_PERIOD_RE = re.compile(r"([-+]?)(\d*)\.(\d*)\\dot\{(\d)\}(?:(\d*)\\dot\{(\d)\})?")
# A mixed number "2\frac{1}{2}" (2 1/2), the whole answer.
_MIXED_RE = re.compile(r"([-+]?)(\d+)\s*\\[dt]?frac\{(\d+)\}\{(\d+)\}")
# 7.2 \times 10^{-3}, 3 \cdot 10^5: scientific notation, as e-notation.
_SCIENTIFIC_RE = re.compile(r"([-+]?\d+(?:\.\d+)?)\s*(?:\\times|\\cdot|\*)\s*10\^\{?\s*([-+]?\d+)\s*\}?")
# 0b1011, 0o17, 0x1F: a base written as a prefix.
_PREFIXED_RE = re.compile(r"0([box])([0-9A-Fa-f]+)")
_PREFIX_BASES = {"b": 2, "o": 8, "x": 16}
# Base subscripts: 1011_{2}, 1011_{(2)}, (1011)_2, 1011_{\text{two}} -> 1011_2.
_BASE_RE = re.compile(r"\(?([0-9A-Za-z]+)\)?_\{?\(?(?:\\text\{\s*)?([0-9]+|[A-Za-z]+)\s*\}?\)?\}?")
_BASED_RE = re.compile(r"([0-9A-Za-z]+)_([0-9]+)")
# After a space: words, "m/s", "cm^2"; without one, only a known unit ("5cm"), since "3xy" is a
# product. "and" / "or" join answers, "am" / "pm" are part of a time, "pi" is a factor, "to" a ratio.
# Tokens are separated by spaces, so that the match is linear (no way to split a run of letters).
_UNIT_TOKEN = r"[A-Za-z]+(?:/[A-Za-z]+)*(?:\^\{?\d\}?)?\.?"
_UNITS_RE = re.compile(rf"([-+]?[\d.,]*\d)(\s*{_UNIT_TOKEN}(?:\s+{_UNIT_TOKEN})*)\s*")
_KNOWN_UNITS = set(
    "mm cm km kg mg lb lbs oz ft in mi mph kph sec secs min mins hr hrs hours minutes seconds days "
    "cents dollars degrees units inches feet meters miles pounds grams liters ml".split()
)
_NOT_UNITS = {"and", "or", "am", "pm", "a.m", "p.m", "pi", "to"}
# 9\cdot i, 9 \times i: the imaginary unit as a factor.
_IMAGINARY_RE = re.compile(r"(\d)\s*\\(?:cdot|times)\s*i(?![A-Za-z])")
# "\ " (a LaTeX space), not the end of a "\\" row break.
_LATEX_SPACE_RE = re.compile(r"(?<!\\)\\ ")
# A word answer: letters, spaces, hyphens and apostrophes (after unwrapping \text{}).
_WORDS_RE = re.compile(r"[A-Za-z][A-Za-z \-']*\.?")
_ARTICLES_RE = re.compile(r"^(?:the|a|an)\s+", re.IGNORECASE)
_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split()
)
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_NUMBER_WORDS = {w: i for i, w in enumerate(_ONES)} | {w: 20 + 10 * i for i, w in enumerate(_TENS)}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6}
# Ratios in words: "1 to 2", "1 \text{ to } 2".
_RATIO_RE = re.compile(r"([-+]?\d+(?:\.\d+)?)\s*(?:\\text\{\s*to\s*\}|to)\s*([-+]?\d+(?:\.\d+)?)")
# Vectors: \langle a, b \rangle, a column \begin{pmatrix} a \\ b \end{pmatrix}, a i + b j + c k.
_ANGLE_RE = re.compile(r"\\langle(.*)\\rangle")
_COLUMN_RE = re.compile(r"\\begin\{[pb]matrix\}(.*)\\end\{[pb]matrix\}", re.DOTALL)
_IJK_RE = re.compile(r"([-+]?[^-+]*?)\s*\\(?:mathbf|vec|hat)\{([ijk])\}|([-+]?[^-+]*?)\s*\\hat\s*([ijk])")
# One variable bounded on one side, or between two bounds: "x \le 3", "0 \ge x", "-1 < x \le 2".
_LESS = {"<": "<", "\\lt": "<", "\\le": "<=", "\\leq": "<=", "\\leqslant": "<="}
_MORE = {">": ">", "\\gt": ">", "\\ge": ">=", "\\geq": ">=", "\\geqslant": ">="}
_REL = "|".join(sorted(map(re.escape, {**_LESS, **_MORE}), key=len, reverse=True))
_ONE_SIDED_RE = re.compile(rf"([A-Za-z])\s*({_REL})\s*([^<>=]+)")
_REVERSED_RE = re.compile(rf"([^<>=A-Za-z][^<>=]*?)\s*({_REL})\s*([A-Za-z])")
_TWO_SIDED_RE = re.compile(rf"([^<>=]+?)\s*({_REL})\s*([A-Za-z])\s*({_REL})\s*([^<>=]+)")
_ABS_RE = re.compile(rf"\|\s*([A-Za-z])\s*\|\s*({_REL})\s*([^<>=]+)")
# Set-builder {x | ...}, {x : ...}, {x \mid ...}: its condition.
_SET_BUILDER_RE = re.compile(r"\\\{\s*[A-Za-z]\s*(?:\\mid|\||:)\s*(.*)\\\}")
# French intervals: ]3, 4], ]5, +\infty[.
_FRENCH_RE = re.compile(r"([\]\[])([^\[\]]*),([^\[\]]*)([\]\[])")


def _fraction(sign: str, value: Fraction) -> str:
    return f"{sign}\\frac{{{value.numerator}}}{{{value.denominator}}}"


def _periodic(sign: str, whole: str, fixed: str, period: str) -> str:
    """whole.fixed(period)(period)... as a fraction."""
    scale = 10 ** len(fixed) * (10 ** len(period) - 1)
    return _fraction(sign, Fraction(int(whole or 0)) + Fraction(int(fixed + period) - int(fixed or 0), scale))


def _dotted(m: re.Match) -> str:
    sign, whole, fixed, first, middle, last = m.groups()
    return _periodic(sign, whole, fixed, first + (middle or "") + (last or ""))


def _words_number(text: str) -> int | None:
    """A number written in English words ("seventy-three", "one hundred four"), or ``None``."""
    total = current = 0
    words = [w for w in re.split(r"[\s\-]+", text.lower()) if w and w != "and"]
    if not words:
        return None
    for w in words:
        if w in _NUMBER_WORDS:
            current += _NUMBER_WORDS[w]
        elif w in _SCALES:
            current = max(current, 1) * _SCALES[w]
            if _SCALES[w] >= 1000:
                total, current = total + current, 0
        else:
            return None
    return total + current


def _vector(parts: list[str]) -> str:
    return "(" + ",".join(p.strip() for p in parts) + ")"


def _as_tuple(s: str) -> str:
    """A vector in angle brackets, as a single column, or as i, j, k components: a tuple."""
    angle = _ANGLE_RE.fullmatch(s)
    if angle:
        return _vector(angle.group(1).split(","))
    column = _COLUMN_RE.fullmatch(s)
    if column and "&" not in column.group(1):
        return _vector(column.group(1).split("\\\\"))
    found = {}
    for m in _IJK_RE.finditer(s):
        coeff, axis = (m.group(1), m.group(2)) if m.group(2) else (m.group(3), m.group(4))
        coeff = coeff.strip()
        found[axis] = {"": "1", "+": "1", "-": "-1"}.get(coeff, coeff.lstrip("+"))
    if found and _IJK_RE.sub("", s).strip() == "":
        return _vector([found.get(axis, "0") for axis in "ijk"])
    return s


def _interval(s: str) -> str:
    """A one-variable inequality (or |x| < a, or a set-builder set of one) as the interval it
    describes: a grader accepts either."""
    builder = _SET_BUILDER_RE.fullmatch(s)
    s = builder.group(1).strip() if builder else s
    absolute = _ABS_RE.fullmatch(s)
    if absolute:
        _, rel, bound = absolute.groups()
        if rel in _LESS:
            b = bound.strip()
            return f"{'[' if _LESS[rel] == '<=' else '('}-{b},{b}{']' if _LESS[rel] == '<=' else ')'}"
        return s
    two = _TWO_SIDED_RE.fullmatch(s)
    if two:
        lo, rel1, _, rel2, hi = two.groups()
        if rel1 in _LESS and rel2 in _LESS:
            left, right = "[" if _LESS[rel1] == "<=" else "(", "]" if _LESS[rel2] == "<=" else ")"
            return f"{left}{lo.strip()},{hi.strip()}{right}"
        return s
    one = _ONE_SIDED_RE.fullmatch(s)
    if one:
        _, rel, bound = one.groups()
        upper = rel in _LESS
    else:
        reversed_ = _REVERSED_RE.fullmatch(s)
        if not reversed_:
            return s
        bound, rel, _ = reversed_.groups()
        upper = rel in _MORE  # "3 > x" bounds x from above
    bound, closed = bound.strip(), {**_LESS, **_MORE}[rel].endswith("=")
    if upper:
        return f"(-\\infty,{bound}{']' if closed else ')'}"
    return f"{'[' if closed else '('}{bound},\\infty)"


def _french(s: str) -> str:
    """]3, 4] and ]5, +\\infty[ (the French notation) as (3, 4] and (5, \\infty)."""
    m = _FRENCH_RE.fullmatch(s)
    if not m:
        return s
    left, lo, hi, right = m.groups()
    left, right = "(" if left == "]" else "[", ")" if right == "[" else "]"
    return f"{left}{lo.strip()},{hi.strip().removeprefix('+')}{right}"


def _drop_units(s: str) -> str:
    units = _UNITS_RE.fullmatch(s)
    if units and _is_unit(units.group(2)):
        return units.group(1)
    return s


def _is_unit(text: str) -> bool:
    """Whether the words after a number are a unit: after a space, words of two letters or more,
    or one letter with ``/`` or a power (``m/s``, ``m^2``); without one, a known unit (``5cm``:
    ``3xy`` is a product); never a joiner, a time of day or ``pi``."""
    tokens = text.split()
    words = {w.lower().rstrip(".") for w in re.split(r"[\s/^{}]+", text) if w.isalpha()}
    if _NOT_UNITS & words:
        return False
    if not text[:1].isspace():
        return words <= _KNOWN_UNITS
    return all(len(re.sub(r"[^A-Za-z]", "", t)) >= 2 or "/" in t or "^" in t for t in tokens)


_UNIT_NAMES = {
    "in": "inch", "inches": "inch", "ft": "foot", "feet": "foot", "yd": "yard", "mi": "mile",
    "mm": "millimeter", "cm": "centimeter", "m": "meter", "km": "kilometer",
    "s": "second", "sec": "second", "secs": "second", "min": "minute", "mins": "minute",
    "h": "hour", "hr": "hour", "hrs": "hour", "g": "gram", "kg": "kilogram", "lb": "pound",
    "lbs": "pound", "cents": "cent", "dollars": "dollar", "degrees": "degree",
}  # fmt: skip
_POWERS = {"square": "^2", "sq": "^2", "cubic": "^3", "cu": "^3"}


def unit_words(s: str) -> str | None:
    """The unit of a number (``"kilometer/second"`` of ``5 \\text{ km/s}``, ``"dollar"`` of
    ``\\$5``): names, abbreviations, plurals and "square" spelled one way; ``None`` if none."""
    # Twice: a wrapper inside a wrapper (\text{5 \mbox{cm}}).
    s = _LATEX_SPACE_RE.sub(" ", _WRAPPED_RE.sub(r"\1", _WRAPPED_RE.sub(r"\1", s.strip()))).strip()
    if re.fullmatch(r"\\?\$\s*[-+]?[\d.,]*\d", s):
        return "dollar"
    units = _UNITS_RE.fullmatch(s)
    if not units or not _is_unit(units.group(2)):
        return None
    out, power = [], ""
    for token in re.findall(r"[A-Za-z]+|\^\{?\d\}?|/", units.group(2).lower()):
        if token in _POWERS:
            power = _POWERS[token]
        elif token.isalpha():
            name = _UNIT_NAMES.get(token, token)
            out.append(_UNIT_NAMES.get(name.rstrip("s"), name.rstrip("s")) + power)
            power = ""
        elif out and token != "/":
            out[-1] += "^" + token.strip("^{}")
        else:
            out.append(token)
    return "".join(out)


def same_units(a: str, b: str) -> bool:
    """False where both answers name a unit and the units differ (``5 m/s`` against ``5 km/s``,
    ``\\$5.40`` against ``5.4 cents``): dropping units on both sides would equate them."""
    x, y = unit_words(a), unit_words(b)
    return x is None or y is None or x == y


def same_based_number(a: str, b: str) -> bool | None:
    """Two numbers with base subscripts (``1011_2``, ``13_8``) compare by value; else ``None``."""
    x, y = _BASED_RE.fullmatch(a), _BASED_RE.fullmatch(b)
    if not (x and y):
        return None
    try:
        return int(x.group(1), int(x.group(2))) == int(y.group(1), int(y.group(2)))
    except ValueError:  # a digit the base does not have, or a base past 36
        return False


def rewrite_spelling(s: str) -> str:
    """``s`` in one spelling (see the module's docstring): wrappers, colour and siunitx removed,
    Unicode as LaTeX, units after a number dropped, numbers in other notations as plain numbers or
    fractions, bases as subscripts, word answers in lower case without an article, ratios with a
    colon, vectors as tuples, and inequalities and French or set-builder intervals as intervals."""
    s = _COLOR_RE.sub("", s.strip()).replace("\\displaystyle", "").strip()
    s = _NUM_RE.sub(r"\1", s)
    s = _ANG_RE.sub(r"\1^\\circ", s)
    s = _ROOT_RE.sub(lambda m: "\\sqrt{" + m.group(1).strip("{}()") + "}", s)
    s = _UNICODE_RE.sub(lambda m: _UNICODE[m.group(0)], s).strip()
    s = _DEGREE_O_RE.sub("^\\\\circ", s)
    s = _TEXT_ATOM_RE.sub(r"\1", s)
    wrapped = _WRAPPED_RE.fullmatch(s)
    if wrapped:
        s = wrapped.group(1).strip()
    s = _drop_units(_LATEX_SPACE_RE.sub(" ", s))
    s = _BARE_ROOT_RE.sub(lambda m: "\\sqrt{" + next(g for g in m.groups() if g is not None) + "}", s)
    s = _BARE_PI_RE.sub(r"\\pi ", s)
    prefixed = _PREFIXED_RE.fullmatch(s)
    if prefixed:
        s = f"{prefixed.group(2)}_{_PREFIX_BASES[prefixed.group(1)]}"
    base = _BASE_RE.fullmatch(s)
    if base:
        digits, radix = base.groups()
        s = f"{digits}_{_NUMBER_WORDS.get(radix.lower(), radix)}"
    if _WORDS_RE.fullmatch(s):  # a word answer: a number in words, or case and articles do not count
        value = _words_number(s.rstrip("."))
        s = str(value) if value is not None else _ARTICLES_RE.sub("", s.rstrip(".").strip()).lower()
    s = _SEPARATED_RE.sub(lambda m: _SEPARATOR_RE.sub("", m.group(0)), s)
    s = _OVERLINE_RE.sub(lambda m: _periodic(*m.groups()), s)
    s = _DOT_PERIOD_RE.sub(_dotted, s)
    paren = _PAREN_PERIOD_RE.fullmatch(s)
    if paren:
        s = _periodic(*paren.groups())
    mixed = _MIXED_RE.fullmatch(s)
    if mixed:
        sign, whole, num, den = mixed.groups()
        s = _fraction(sign, Fraction(int(whole) * int(den) + int(num), int(den)))
    scientific = _SCIENTIFIC_RE.fullmatch(s)
    if scientific:
        s = f"{scientific.group(1)}e{scientific.group(2)}"
    ratio = _RATIO_RE.fullmatch(s)
    if ratio:
        s = f"{ratio.group(1)}:{ratio.group(2)}"
    s = _IMAGINARY_RE.sub(r"\1i", _as_tuple(s))
    if s.count("\\pm") == 1 and "," not in s:  # a \pm b: the two values, as a set
        plus, minus = s.replace("\\pm", "+"), s.replace("\\pm", "-")
        s = "\\{" + plus + "," + minus + "\\}"
    return _french(_interval(s))
