"""Countdown's rule: an arithmetic expression over the given numbers, parsed and never run.

Only integer literals, the binary operators ``+ - * /`` and parentheses are accepted; anything
else (names, calls, attributes, powers, strings, unary signs) is rejected before any value is
computed. The value is exact (:class:`fractions.Fraction`), and the literals must be the given
numbers, each used exactly once, so an expression cannot grow past what they allow.
"""

from __future__ import annotations

import ast
from collections import Counter
from fractions import Fraction

#: Longer answers are rejected unparsed (a real one for six numbers is under 40 characters).
MAX_EXPRESSION_CHARS = 200

_OPERATORS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}

#: Verdicts of :func:`judge`; each is counted per step as ``countdown/<verdict>``.
VERDICTS = ("correct", "wrong_value", "wrong_numbers", "rejected")


class Rejected(ValueError):
    """An answer that is not an arithmetic expression of Countdown's form."""


def _literals(node: ast.AST) -> list[int]:
    """The integer literals of an expression tree built of allowed nodes only."""
    if isinstance(node, ast.Expression):
        return _literals(node.body)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return _literals(node.left) + _literals(node.right)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return [node.value]
    raise Rejected(f"{type(node).__name__} is not allowed")


def _value(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Expression):
        return _value(node.body)
    if isinstance(node, ast.BinOp):
        return _OPERATORS[type(node.op)](_value(node.left), _value(node.right))
    return Fraction(node.value)


def parse(expression: str) -> ast.Expression:
    """The syntax tree of ``expression`` if it has Countdown's form, else :class:`Rejected`."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise Rejected(f"longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.replace("\\times", "*").replace("\\div", "/"), mode="eval")
    except (SyntaxError, ValueError) as e:
        raise Rejected(f"not an expression: {e}") from None
    _literals(tree)  # raises on any node that is not a literal or + - * /
    return tree


def judge(expression: str, numbers: list[int], target: int) -> str:
    """The verdict (one of :data:`VERDICTS`) of ``expression`` for ``numbers`` and ``target``."""
    try:
        tree = parse(expression)
    except Rejected:
        return "rejected"
    if Counter(_literals(tree)) != Counter(numbers):
        return "wrong_numbers"
    try:
        value = _value(tree)
    except ZeroDivisionError:
        return "wrong_value"
    return "correct" if value == target else "wrong_value"
