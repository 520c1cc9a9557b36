"""orz-rl stands alone: installed (not editable) into a fresh virtual environment and run from
outside the checkout, ``orz-rl eval --benchmarks math500 humaneval`` finds the benchmarks it ships, and no
generic top-level name (envs, recipes) lands in site-packages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ..conftest import REPO


def run(*args, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    out = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return out


def test_a_non_editable_install_in_a_fresh_venv_evaluates_on_its_shipped_data(tiny_model_dir, tmp_path):
    python = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    venv, elsewhere = tmp_path / "venv", tmp_path / "elsewhere"
    elsewhere.mkdir()
    run(python, "-m", "venv", venv, cwd=elsewhere)
    pip = [venv / "bin" / "python", "-m", "pip", "--disable-pip-version-check", "install", "-q"]
    # torch first and pinned, as the Makefile does (an unpinned resolve would pull CUDA wheels);
    # no vLLM: evaluation falls back to transformers, which is all this needs.
    run(*pip, "torch==2.13.0", cwd=elsewhere)
    run(*pip, "-c", REPO / "constraints-cpu.txt", REPO, cwd=elsewhere)
    site = next((venv / "lib").glob("python3.*/site-packages"))
    assert (site / "orz_rl" / "problems" / "orz_eval" / "LICENSE").is_file()  # a copy, with its licence
    assert (site / "orz_rl" / "problems" / "humaneval" / "LICENSE").is_file()
    assert not {"envs", "recipes", "examples", "tests"} & {p.name for p in site.iterdir()}
    out_dir = elsewhere / "eval"
    out = run(
        *(venv / "bin" / "orz-rl", "eval", "--model", tiny_model_dir, "--benchmarks", "math500", "humaneval"),
        *("--limit", "5", "--samples", "2", "--out-dir", out_dir, "--no-progress"),
        cwd=elsewhere,
    )
    assert "| math500 |" in out.stdout and "| humaneval |" in out.stdout
    summary = json.loads((out_dir / "eval.json").read_text())
    assert summary["results"]["math500"]["questions"] == summary["results"]["humaneval"]["questions"] == 5
    assert summary["max_new_tokens"] == 512  # ORZ's 8,000 does not fit the tiny model's 1,024 positions
    assert len((out_dir / "samples.jsonl").read_text().splitlines()) == 20
