import json

import pytest

from orz_rl.curation.difficulty import SelectConfig, band, select
from orz_rl.curation.items import read_items
from orz_rl.problems.formats import DatasetFormatError
from orz_rl.problems.toy_task import write_orz_train_file
from tests.conftest import orz_cli_here
from tests.curation.sources import report, write_items


def test_difficulty_writes_the_pass_rates_orz_rl_eval_gives_for_the_same_items_and_seed(
    tiny_model_dir, tmp_path
):
    toy = write_orz_train_file(tmp_path / "toy.json")
    common = ("--model", str(tiny_model_dir), "--samples", "8", "--seed", "3", "--max-new-tokens", "32")
    common += ("--no-progress",)
    evaluated = orz_cli_here("eval", "--benchmarks", str(toy), "--out-dir", str(tmp_path / "eval"), *common)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    graded = orz_cli_here("data", "difficulty", str(toy), "--out", str(tmp_path / "graded.jsonl"), *common)
    assert graded.returncode == 0, graded.stderr[-3000:]

    correct = [0] * 100
    for line in (tmp_path / "eval" / "samples.jsonl").read_text().splitlines():
        record = json.loads(line)
        correct[record["item"]] += record["correct"]
    items = list(read_items(tmp_path / "graded.jsonl"))
    assert [item.meta["pass_rate"] for item in items] == [c / 8 for c in correct]
    assert {item.meta["samples"] for item in items} == {8}
    assert 0 < sum(correct) < 800  # the untrained tiny model solves some samples, not all
    saved = report(tmp_path / "graded.jsonl")
    assert saved["read"] == saved["kept"] == 100 and saved["mean_pass_rate"] == sum(correct) / 800


def test_select_keeps_a_band_and_drops_solved_and_unsolved_items(tmp_path):
    src = tmp_path / "graded.jsonl"
    write_items(src, [(f"Q{i}", "1") for i in range(5)])
    rates = [0.0, 0.25, 0.75, 0.875, 1.0]
    lines = [json.loads(line) for line in src.read_text().splitlines()]
    for line, rate in zip(lines, rates, strict=True):
        line[0]["pass_rate"] = rate
    src.write_text("".join(json.dumps(line) + "\n" for line in lines))

    select(SelectConfig(input=src, out=tmp_path / "band.jsonl", pass_rate="0.0,0.75"))
    assert [i.meta["pass_rate"] for i in read_items(tmp_path / "band.jsonl")] == [0.0, 0.25, 0.75]
    assert report(tmp_path / "band.jsonl")["reasons"] == {"outside_band": 2}

    select(SelectConfig(input=src, out=tmp_path / "mid.jsonl", drop_solved=True, drop_unsolved=True))
    assert [i.meta["pass_rate"] for i in read_items(tmp_path / "mid.jsonl")] == [0.25, 0.75, 0.875]
    assert report(tmp_path / "mid.jsonl")["reasons"] == {"solved": 1, "unsolved": 1}


def test_select_on_items_without_pass_rates_names_the_item_and_the_step_to_run(tmp_path):
    src = write_items(tmp_path / "plain.jsonl", [("Q", "1")])
    with pytest.raises(DatasetFormatError, match=r"plain.jsonl#0: no pass_rate; run orz-rl data difficulty"):
        select(SelectConfig(input=src, out=tmp_path / "out.jsonl", pass_rate="0,1"))
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("text", ["0.5", "a,b", "0.8,0.2", "0,2"])
def test_a_malformed_band_is_one_error_naming_it(text):
    with pytest.raises(ValueError, match=f"--pass-rate '{text}'"):
        band(text)
