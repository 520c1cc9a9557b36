"""``orz-rl status``: a run's state, last step, recent means, checkpoints and time to the end,
from its directory alone."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from orz_rl.tools.status import read_status

from ..conftest import REPO, cpu_default_on, orz_cli, orz_cli_here


def fake_run(run_dir, *, step, total, pid, ended, seconds=2.0):
    run_dir.mkdir(parents=True, exist_ok=True)
    rows = [{"step": i, "reward/mean": i / 10, "time/step": seconds} for i in range(1, step + 1)]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    progress = {"step": step, "total_steps": total, "pid": pid, "host": socket.gethostname()}
    progress |= {"updated": time.time(), "ended": ended}
    (run_dir / "progress.json").write_text(json.dumps(progress))
    return run_dir


def test_a_live_run_gets_the_remaining_steps_times_the_median_recent_step(tmp_path):
    run = fake_run(tmp_path / "run", step=10, total=100, pid=os.getpid(), ended=False)
    status = read_status(run, window=5)
    assert status["state"] == "running" and status["step"] == 10 and status["total_steps"] == 100
    assert 179.0 <= status["eta_seconds"] <= 180.0  # 90 steps x 2 s, less the moments since the write
    assert status["means"]["reward"] == pytest.approx(0.8)  # steps 6..10


def test_a_run_whose_process_is_gone_without_closing_says_so_and_has_no_eta(tmp_path):
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    run = fake_run(tmp_path / "run", step=10, total=100, pid=int(gone.stdout), ended=False)
    status = read_status(run)
    assert status["state"].startswith("ended without closing") and "eta_seconds" not in status


def test_a_run_stopped_before_its_end_says_how_to_resume(tmp_path):
    run = fake_run(tmp_path / "run", step=10, total=100, pid=os.getpid(), ended=True)
    assert read_status(run)["state"].startswith("stopped (run the same command to resume)")


def test_status_of_a_finished_run_shows_its_last_step_means_and_checkpoints(short_run):
    out = orz_cli_here("status", str(short_run))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"{short_run}: finished" and lines[1] == "step 6 of 6"
    assert lines[2].startswith("last 10 steps: reward ") and "s/step" in lines[2]
    assert "to the end" not in out.stdout
    saved = sorted(p.name for p in (short_run / "checkpoints").iterdir() if p.is_dir())
    assert sorted(lines[3].removeprefix("checkpoints: ").split(", ")) == saved


def test_status_of_a_live_training_run_says_running_with_the_time_to_the_end(tiny_model_dir, tmp_path):
    args = [*cpu_default_on(tiny_model_dir, tmp_path), "--max-steps", "200", "--no-progress"]
    train = subprocess.Popen([sys.executable, "-m", "orz_rl.cli", *args], cwd=REPO, stdout=subprocess.DEVNULL)
    try:
        progress, deadline = tmp_path / "run" / "progress.json", time.monotonic() + 300
        while not (progress.is_file() and json.loads(progress.read_text())["step"] >= 2):
            assert train.poll() is None, "the training run ended before its second step"
            assert time.monotonic() < deadline, "no second step within 5 minutes"
            time.sleep(1)
        out = orz_cli("status", str(tmp_path / "run"))
    finally:
        train.kill()
        train.wait()
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == f"{tmp_path / 'run'}: running"
    assert " of 200" in out.stdout and "to the end: " in out.stdout


def test_a_directory_that_is_no_run_is_one_error_naming_it(tmp_path):
    out = orz_cli_here("status", str(tmp_path))
    assert out.returncode == 1 and "is not a run directory" in out.stderr and "Traceback" not in out.stderr


def test_a_progress_file_that_is_not_json_is_one_error_naming_it(tmp_path):
    (tmp_path / "progress.json").write_text("{not json")
    out = orz_cli_here("status", str(tmp_path))
    assert out.returncode == 1 and "progress.json: not JSON" in out.stderr and "Traceback" not in out.stderr
