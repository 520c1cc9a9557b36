"""LiveCodeBench's ``code_generation_lite`` problems, read as its files store them.

``public_test_cases`` is a JSON list of ``{"input", "output", "testtype"}``; ``private_test_cases``
is the same JSON, or that JSON string pickled, zlib-compressed and base64-encoded (LiveCodeBench's
own loader, ``lcb_runner/benchmarks/code_generation.py``, tries ``json.loads`` and falls back to
``pickle.loads``). A file a user downloaded is data, not code: the pickle is read by an unpickler
that resolves no global name at all, so only strings, numbers and containers can come out of it,
and a crafted file that names a callable (the way a pickle runs code) is refused with an error
naming the file and the item, before anything runs. The decompressed size is capped too.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import pickle
import zlib
from typing import Any

from orz_rl.problems.problem import CodeTests, Problem

#: Largest decompressed ``private_test_cases`` read (LiveCodeBench's largest are ~100 MB).
MAX_DECOMPRESSED_BYTES = 1 << 30


class UnsafeTestCasesError(ValueError):
    """A test-case field that cannot be read as data (a pickle naming code, an oversized blob)."""


class _DataOnlyUnpickler(pickle.Unpickler):
    """Unpickles strings, numbers, bytes and containers; any global name (class, function) is
    refused, so no ``__reduce__`` payload can run."""

    def __init__(self, data: bytes, where: str) -> None:
        super().__init__(io.BytesIO(data))
        self.where = where

    def find_class(self, module: str, name: str) -> Any:
        raise UnsafeTestCasesError(
            f"{self.where}: private_test_cases is a pickle that names {module}.{name}; refused "
            "(only pickled strings and containers are read: LiveCodeBench pickles a JSON string)"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeTestCasesError(f"{self.where}: private_test_cases uses a persistent id; refused")


def _inflate(blob: bytes, where: str) -> bytes:
    inflater = zlib.decompressobj()
    data = inflater.decompress(blob, MAX_DECOMPRESSED_BYTES)
    if inflater.unconsumed_tail:
        raise UnsafeTestCasesError(
            f"{where}: private_test_cases inflates past {MAX_DECOMPRESSED_BYTES} bytes; refused"
        )
    return data


def _unpickled_text(field: str, where: str) -> str:
    """LiveCodeBench's encoding: base64 of zlib of a pickled string."""
    try:
        blob = base64.b64decode(field.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise ValueError(f"{where}: test cases are neither JSON nor base64 ({e})") from None
    try:
        raw = _inflate(blob, where)
    except zlib.error as e:
        raise ValueError(f"{where}: test cases are base64 but not zlib data ({e})") from None
    try:
        text = _DataOnlyUnpickler(raw, where).load()
    except UnsafeTestCasesError:
        raise
    except Exception as e:  # a truncated or malformed pickle: a data error, never code
        raise ValueError(f"{where}: test cases are not a readable pickle ({type(e).__name__}: {e})") from None
    if not isinstance(text, str):
        raise ValueError(f"{where}: the pickled test cases are a {type(text).__name__}, not a JSON string")
    return text


def decode_test_cases(field: str, where: str) -> list[dict[str, Any]]:
    """The test cases of one ``public_test_cases`` / ``private_test_cases`` field: each a dict with
    ``input``, ``output`` and ``testtype`` (``"stdin"`` or ``"functional"``).

    ``where`` (``file: item N``) names the item in errors: a field that is neither JSON nor
    LiveCodeBench's base64 of zlib of a pickled JSON string is a ``ValueError``; a pickle that
    names any class or function is an :class:`UnsafeTestCasesError`.
    """
    if not isinstance(field, str):
        raise ValueError(f"{where}: test cases must be a string (JSON or LiveCodeBench's encoding)")
    try:
        cases = json.loads(field)
    except json.JSONDecodeError:
        text = _unpickled_text(field, where)
        try:
            cases = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: the unpickled test cases are not JSON ({e})") from None
    if not isinstance(cases, list):
        raise ValueError(f"{where}: test cases must be a JSON list, not {type(cases).__name__}")
    for i, case in enumerate(cases):
        ok = (
            isinstance(case, dict)
            and isinstance(case.get("input"), str)
            and isinstance(case.get("output"), str)
        )
        if not ok or case.get("testtype") not in ("stdin", "functional"):
            raise ValueError(
                f"{where}: test case {i} must be {{'input': str, 'output': str, "
                "'testtype': 'stdin' | 'functional'}"
            )
    return cases


#: What LiveCodeBench puts before every program it runs (``lcb_runner/evaluation/testing_util.py``,
#: ``import_string``): the standard-library names its problems' solutions use unimported.
LCB_IMPORTS = (
    "from string import *\nfrom re import *\nfrom datetime import *\nfrom collections import *\n"
    "from heapq import *\nfrom bisect import *\nfrom copy import *\nfrom math import *\n"
    "from random import *\nfrom statistics import *\nfrom itertools import *\nfrom functools import *\n"
    "from operator import *\nfrom io import *\nfrom sys import *\nfrom json import *\n"
    "from builtins import *\nfrom typing import *\nimport string\nimport re\nimport datetime\n"
    "import collections\nimport heapq\nimport bisect\nimport copy\nimport math\nimport random\n"
    "import statistics\nimport itertools\nimport functools\nimport operator\nimport io\nimport sys\n"
    "import json\nsys.setrecursionlimit(50000)\n"
)

#: LiveCodeBench's time limit per test (``run_test(..., timeout=6)``).
LCB_SECONDS = 6.0

#: The keys that make an item LiveCodeBench's (``code_generation_lite``).
LCB_KEYS = frozenset({"question_content", "public_test_cases", "private_test_cases", "metadata"})

_WITH_STARTER = (
    "You will use the following starter code to write the solution to the problem and enclose your "
    "code within delimiters."
)
_WITHOUT_STARTER = (
    "Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test "
    "on the sample inputs). Enclose your code within delimiters as follows. Ensure that when the python "
    "program runs, it reads the inputs, runs the algorithm and writes output to STDOUT."
)


def is_lcb_item(item: Any) -> bool:
    """Whether ``item`` has LiveCodeBench's keys."""
    return isinstance(item, dict) and LCB_KEYS <= set(item)


def lcb_question(content: str, starter_code: str) -> str:
    """LiveCodeBench's own question text (``lcb_runner/prompts/code_generation.py``, the generic
    template), without its answer cue: ORZ's code template follows it."""
    if starter_code:
        return f"### Question:\n{content}\n\n### Format: {_WITH_STARTER}\n```python\n{starter_code}\n```"
    return f"### Question:\n{content}\n\n### Format: {_WITHOUT_STARTER}\n```python\n# YOUR CODE HERE\n```"


def lcb_problem(item: dict[str, Any], where: str = "this item") -> Problem:
    """One ``code_generation_lite`` item as a programming problem, public and private tests together.

    Stdin tests compare as LiveCodeBench does (``compare="lcb"``); functional ones call
    ``metadata.func_name`` (on ``Solution`` where the program defines it) with one JSON value per
    input line. ``contest_date`` (ISO) and ``difficulty`` are kept for filtering and breakdowns.
    """
    cases = decode_test_cases(item["public_test_cases"], where) + decode_test_cases(
        item["private_test_cases"], where
    )
    if not cases:
        raise ValueError("no test cases")
    kinds = {c["testtype"] for c in cases}
    if len(kinds) > 1:
        raise ValueError(f"test cases of both kinds {sorted(kinds)}; LiveCodeBench problems have one")
    metadata = item["metadata"]
    metadata = json.loads(metadata) if isinstance(metadata, str) else metadata
    if not isinstance(metadata, dict):
        raise ValueError("'metadata' must be a JSON object")
    pairs = tuple((c["input"], c["output"]) for c in cases)
    if kinds == {"functional"}:
        name = metadata.get("func_name")
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"functional tests need metadata.func_name, got {name!r}")
        tests = CodeTests(calls=pairs, entry_point=name, prelude=LCB_IMPORTS, time_limit=LCB_SECONDS)
    else:
        tests = CodeTests(stdio=pairs, compare="lcb", prelude=LCB_IMPORTS, time_limit=LCB_SECONDS)
    starter = str(item.get("starter_code") or "")
    return Problem(
        question=lcb_question(str(item["question_content"]), starter),
        answer="",
        tests=tests,
        groups=(("difficulty", str(item["difficulty"])),) if item.get("difficulty") else (),
        date=str(item.get("contest_date", "")),
    )
