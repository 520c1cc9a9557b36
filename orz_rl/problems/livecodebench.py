"""LiveCodeBench's test cases as its ``code_generation_lite`` files store them.

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
