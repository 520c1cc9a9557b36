"""LiveCodeBench's test-case fields: JSON, its pickled encoding, and crafted files refused unrun."""

from __future__ import annotations

import base64
import json
import os
import pickle
import zlib

import pytest

from orz_rl.problems import livecodebench
from orz_rl.problems.livecodebench import UnsafeTestCasesError, decode_test_cases

CASES = [
    {"input": "3 4\n", "output": "7\n", "testtype": "stdin"},
    {"input": "[1, 2]\n3", "output": "[1, 2, 3]", "testtype": "functional"},
]


def lcb_encoding(payload: object, protocol: int = pickle.DEFAULT_PROTOCOL) -> str:
    """How LiveCodeBench stores ``private_test_cases``: base64(zlib(pickle(...)))."""
    return base64.b64encode(zlib.compress(pickle.dumps(payload, protocol=protocol))).decode()


def test_json_test_cases_are_read_as_they_are():
    assert decode_test_cases(json.dumps(CASES), "lcb.jsonl: item 1") == CASES


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_the_pickled_encoding_of_a_json_string_is_read_at_every_protocol(protocol):
    assert decode_test_cases(lcb_encoding(json.dumps(CASES), protocol), "lcb.jsonl: item 1") == CASES


class _RunsAShellCommand:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_pickle_is_refused_naming_the_file_and_item_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    crafted = lcb_encoding(_RunsAShellCommand(str(marker)))
    with pytest.raises(UnsafeTestCasesError, match=r"lcb\.jsonl: item 7: .*names posix\.system; refused"):
        decode_test_cases(crafted, "lcb.jsonl: item 7")
    assert not marker.exists()
    # The same payload inside a container, and a class (no call) are refused too.
    for payload in ([json.dumps(CASES), _RunsAShellCommand(str(marker))], zlib.decompressobj):
        with pytest.raises(UnsafeTestCasesError, match="refused"):
            decode_test_cases(lcb_encoding(payload), "lcb.jsonl: item 7")
    assert not marker.exists()


def test_a_blob_that_inflates_past_the_cap_is_refused(monkeypatch):
    monkeypatch.setattr(livecodebench, "MAX_DECOMPRESSED_BYTES", 1000)
    big = lcb_encoding(json.dumps([{"input": "x" * 5000, "output": "", "testtype": "stdin"}]))
    with pytest.raises(UnsafeTestCasesError, match="inflates past 1000 bytes"):
        decode_test_cases(big, "lcb.jsonl: item 2")


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("not json, not base64!", "neither JSON nor base64"),
        (base64.b64encode(b"plain bytes").decode(), "not zlib data"),
        (base64.b64encode(zlib.compress(b"\x80\x05garbage")).decode(), "not a readable pickle"),
        (lcb_encoding(12), "are a int, not a JSON string"),
        (lcb_encoding("{not json"), "unpickled test cases are not JSON"),
        (json.dumps({"input": "1"}), "must be a JSON list, not dict"),
        (json.dumps([{"input": "1", "output": "2"}]), "test case 0 must be"),
        (json.dumps([{"input": "1", "output": 2, "testtype": "stdin"}]), "test case 0 must be"),
    ],
)
def test_a_malformed_field_is_one_error_naming_the_item(field, message):
    with pytest.raises(ValueError, match=f"lcb.jsonl: item 3: .*{message}"):
        decode_test_cases(field, "lcb.jsonl: item 3")
