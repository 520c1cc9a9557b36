"""``eval`` and ``compare`` never write over a file they read (the data steps' own guard is in
``tests/curation/test_commands.py``): refused before any model loads, the input untouched."""

from __future__ import annotations

import json

from ..conftest import orz_cli_here


def test_eval_refuses_an_out_dir_where_a_benchmark_file_has_an_output_name(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    benchmark = out / "samples.jsonl"
    text = json.dumps({"problem": "1+1?", "answer": "2"}) + "\n"
    benchmark.write_text(text)
    link = tmp_path / "link"
    link.symlink_to(out)  # the same folder by another name
    # No model at that path: the refusal comes before any model would load.
    args = ("eval", "--model", str(tmp_path / "no-model"), "--benchmarks", str(benchmark))
    elsewhere, here = orz_cli_here(*args), orz_cli_here(*args, "--out-dir", str(link))
    assert "no-model" in elsewhere.stderr  # elsewhere, the same command gets as far as the model
    assert here.returncode == 1 and "Traceback" not in here.stderr
    assert f"--out-dir '{link / 'samples.jsonl'}' is the input '{benchmark}'" in here.stderr, here.stderr
    assert benchmark.read_text() == text and sorted(p.name for p in out.iterdir()) == ["samples.jsonl"]


def test_eval_refuses_an_out_dir_under_a_file_before_any_model_loads(tmp_path):
    benchmark = tmp_path / "b.jsonl"
    benchmark.write_text(json.dumps({"problem": "1+1?", "answer": "2"}) + "\n")
    args = ("eval", "--model", str(tmp_path / "no-model"), "--benchmarks", str(benchmark))
    out = orz_cli_here(*args, "--out-dir", str(benchmark / "out"))
    assert out.returncode == 1 and "Traceback" not in out.stderr and "no-model" not in out.stderr
    assert (
        f"out_dir '{benchmark / 'out'}' ('{benchmark}' on its path) is a file, not a directory" in out.stderr
    )


def test_compare_refuses_an_out_that_is_a_runs_metrics(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    metrics = "".join(json.dumps({"step": s, "reward/mean": s / 10}) + "\n" for s in (1, 2, 3))
    (run / "metrics.jsonl").write_text(metrics)
    out = orz_cli_here("compare", str(run), "--out", str(run / "metrics.jsonl"))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"--out '{run / 'metrics.jsonl'}' is the input" in out.stderr, out.stderr
    assert (run / "metrics.jsonl").read_text() == metrics
