"""Outputs appear whole or not at all: the old file stays until the new one is complete, and a
write that fails leaves neither a half file under the name nor a ``.partial`` beside it."""

from __future__ import annotations

import pytest

from orz_rl.runtime.atomic_write import replacing, write_text


def test_a_write_that_fails_keeps_the_old_file_and_leaves_no_partial(tmp_path):
    out = tmp_path / "stats.md"
    out.write_text("the old report\n")
    with pytest.raises(RuntimeError, match="interrupted"), replacing(out) as partial:
        partial.write_text("half of the new")
        assert out.read_text() == "the old report\n"  # a reader meanwhile sees the old one whole
        raise RuntimeError("interrupted")
    assert out.read_text() == "the old report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats.md"]


def test_a_write_that_ends_replaces_the_file_and_makes_its_folder(tmp_path):
    out = tmp_path / "new" / "report.json"
    assert write_text(out, "{}\n") == out
    assert out.read_text() == "{}\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.json"]
