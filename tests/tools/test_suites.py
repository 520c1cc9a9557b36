"""`orz-rl eval --suite orz`: ORZ's seven benchmarks found among downloads, and the paper's table."""

from __future__ import annotations

import json
import shutil

import pytest

from orz_rl.problems.benchmarks import DATA_DIR
from orz_rl.tools.suites import ORZ, find_suite, suite_table
from tests.problems import published_rows as rows
from tests.problems.test_livecodebench import STDIN

from ..conftest import orz_cli_here


def downloads(root):
    """A folder laid out as the Hub's downloads leave it (each dataset's own files and splits)."""

    def put(relative, data):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return rows.write(path, data)

    put("MATH-500/test.jsonl", rows.MATH500)
    put("aime_2025/data/train-00000-of-00001.parquet", rows.AIME_H4)
    for subset in ("diamond", "main", "extended"):
        put(f"gpqa/gpqa_{subset}.csv", rows.GPQA)
    put("mmlu/all/test-00000-of-00001.parquet", rows.MMLU)
    put("mmlu/all/dev-00000-of-00001.parquet", rows.MMLU)
    put("mmlu/abstract_algebra/test-00000-of-00001.parquet", rows.MMLU[1:])
    put("MMLU-Pro/data/test-00000-of-00001.parquet", rows.MMLU_PRO)
    put("MMLU-Pro/data/validation-00000-of-00001.parquet", rows.MMLU_PRO)
    put("code_generation_lite/test.jsonl", [STDIN])
    put("code_generation_lite/test2.jsonl", [STDIN])
    (root / "code_generation_lite" / "README.md").write_text("LiveCodeBench")
    put(".cache/huggingface/stale.jsonl", rows.GSM8K)
    return root


def test_the_orz_suite_finds_each_benchmark_in_its_download_and_ships_the_rest(tmp_path):
    root = downloads(tmp_path)
    specs, notes = find_suite(ORZ, root)
    assert dict(spec.split("=", 1) for spec in specs) == {
        "aime2024": str(DATA_DIR / "aime2024.json"),  # not downloaded: the shipped set
        "aime2025": str(root / "aime_2025/data/train-00000-of-00001.parquet"),  # its only split
        "math500": str(root / "MATH-500/test.jsonl"),
        "gpqa_diamond": str(root / "gpqa/gpqa_diamond.csv"),  # not main or extended
        "livecodebench": str(root / "code_generation_lite"),  # every release file
        "mmlu": str(root / "mmlu/all/test-00000-of-00001.parquet"),  # all, not a subject; test
        "mmlu_pro": str(root / "MMLU-Pro/data/test-00000-of-00001.parquet"),
    }
    assert notes == [f"aime2024: not in {root}; the shipped set"]
    # Named outright, a benchmark is not looked for; one found nowhere is a note, not a guess.
    shutil.rmtree(root / "code_generation_lite")
    specs, notes = find_suite(ORZ, root, given=["math500"])
    assert not any(s.startswith(("math500=", "livecodebench=")) for s in specs)
    assert any(n.startswith("livecodebench: not in") and n.endswith("left out") for n in notes)


def test_the_original_mmlu_csvs_are_found_as_their_test_folder(tmp_path):
    for split in ("test", "dev", "val"):
        for subject in ("anatomy", "virology"):
            path = tmp_path / "data" / split / f"{subject}_{split}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            rows.write(path, rows.MMLU_CSV)
    (tmp_path / "mmlu_hendrycks").mkdir()
    (tmp_path / "data").rename(tmp_path / "mmlu_hendrycks" / "data")
    specs, _ = find_suite(ORZ, tmp_path)
    assert f"mmlu={tmp_path / 'mmlu_hendrycks' / 'data' / 'test'}" in specs


def test_several_candidates_are_one_error_asking_for_name_equals_path(tmp_path):
    rows.write(tmp_path / "math500.jsonl", rows.MATH500)
    (tmp_path / "MATH-500").mkdir()
    rows.write(tmp_path / "MATH-500" / "test.jsonl", rows.MATH500)
    with pytest.raises(ValueError, match=r"'math500': several downloads .*--benchmarks math500=PATH"):
        find_suite(ORZ, tmp_path)
    (tmp_path / "math500.jsonl").unlink()
    (tmp_path / "MATH-500" / "other").mkdir()
    rows.write(tmp_path / "MATH-500" / "other" / "test.jsonl", rows.MATH500)
    with pytest.raises(ValueError, match=r"several candidates in .*MATH-500"):
        find_suite(ORZ, tmp_path)


def test_the_table_puts_this_run_beside_the_papers_rows():
    table = suite_table(ORZ, {"math500": {"avg@16": 0.5}, "mmlu": {"avg@16": 0.25}}, 16)
    lines = table.splitlines()
    assert lines[0] == "| | AIME2024 | AIME2025 | MATH500 | GPQA-Diamond | LiveCodeBench | MMLU | MMLU-Pro |"
    assert lines[2] == "| this run (avg@16) | - | - | 50.0 | - | - | 25.0 | - |"
    assert "| ORZ-0.5B (paper) | 1.0 | 0.2 | 31.0 | 12.1 | - | - | - |" in lines
    assert "| ORZ-32B (paper) | 48.1 | 36.0 | 92.2 | 55.5 | - | 84.9 | 74.4 |" in lines


def test_eval_suite_orz_runs_the_seven_and_prints_the_papers_table(tiny_model_dir, tmp_path):
    root = downloads(tmp_path / "downloads")
    out_dir = tmp_path / "eval"
    out = orz_cli_here(
        *("eval", "--suite", "orz", "--data-dir", str(root), "--model", str(tiny_model_dir)),
        *(
            "--samples",
            "2",
            "--limit",
            "2",
            "--max-new-tokens",
            "16",
            "--out-dir",
            str(out_dir),
            "--no-progress",
        ),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "orz-rl eval --suite orz: aime2024: not in" in out.stdout
    assert "| this run (avg@2) |" in out.stdout and "| ORZ-32B (paper) | 48.1 |" in out.stdout
    summary = json.loads((out_dir / "eval.json").read_text())
    assert set(summary["results"]) == {b.name for b in ORZ.benchmarks}
    assert summary["tasks"]["livecodebench"] == "code" and summary["tasks"]["mmlu_pro"] == "math"
    assert [f["path"] for f in summary["benchmarks"]["livecodebench"]["files"]] == [
        str((root / "code_generation_lite" / name).resolve()) for name in ("test.jsonl", "test2.jsonl")
    ]
    assert summary["suite"]["notes"] == [f"aime2024: not in {root}; the shipped set"]


def test_the_papers_figures_are_those_of_docs_orz_recipe():
    from pathlib import Path

    recipe = (Path(__file__).parents[2] / "docs" / "orz_recipe.md").read_text()
    for model, figures in ORZ.paper.items():
        (line,) = [line for line in recipe.splitlines() if line.startswith(f"| {model} |")]
        aime24, aime25, math500, gpqa = (float(cell) for cell in line.strip("|").split("|")[1:5])
        assert (figures["AIME2024"], figures["AIME2025"], figures["MATH500"], figures["GPQA-Diamond"]) == (
            aime24,
            aime25,
            math500,
            gpqa,
        )
    assert "MMLU 84.9, MMLU-Pro 74.4" in recipe
