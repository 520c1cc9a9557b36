import pytest

from orz_rl.curation.commands import STEPS
from tests.conftest import orz_cli_here


def test_data_help_lists_every_step_with_one_line():
    out = orz_cli_here("data", "--help")
    assert out.returncode == 0
    for name, (line, *_) in STEPS.items():
        assert f"  {name}" in out.stdout and line in out.stdout


@pytest.mark.parametrize("step", list(STEPS))
def test_each_step_documents_its_fields(step):
    out = orz_cli_here("data", step, "--help")
    assert out.returncode == 0, out.stderr
    assert f"orz-rl data {step}" in out.stdout and "--out" in out.stdout


def test_an_unknown_step_is_one_error_listing_the_steps():
    out = orz_cli_here("data", "clean")
    assert out.returncode == 1
    assert "unknown step 'clean'" in out.stderr and "dedup" in out.stderr and "Traceback" not in out.stderr


def test_a_missing_input_is_one_error_naming_it(tmp_path):
    out = orz_cli_here("data", "dedup", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "out.jsonl"))
    assert out.returncode == 1
    assert "none.jsonl" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("step", [s for s in STEPS if s != "import"])  # import: test_importing.py
def test_no_step_writes_over_its_input_whatever_the_spelling_of_the_path(step, tmp_path):
    from tests.curation.sources import write_items

    src = write_items(tmp_path / "train.jsonl", [("What is 1+1?", "2")], pass_rate=0.5, samples=2)
    before = src.read_bytes()
    spelled = str(tmp_path / "." / "train.jsonl")
    args = ("--model", str(tmp_path / "no-model")) if step == "difficulty" else ()
    out = orz_cli_here("data", step, str(src), "--out", spelled, *args)
    assert out.returncode == 1, out.stdout[-2000:]
    assert f"--out '{spelled}' is the input" in out.stderr and "Traceback" not in out.stderr
    assert src.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.jsonl"]  # nothing written
