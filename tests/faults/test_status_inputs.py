"""``orz-rl status`` on what a crash, a reused pid or a damaged file leaves behind."""

from __future__ import annotations

import json
import os

from orz_rl.runtime.run_log import process_start
from orz_rl.tools.status import read_status
from tests.faults.test_run_history import checkpoint
from tests.tools.test_status import fake_run

from ..conftest import orz_cli_here


def test_a_live_process_that_took_the_runs_pid_is_not_the_run(tmp_path):
    run = fake_run(tmp_path / "run", step=3, total=10, pid=os.getpid(), ended=False)
    progress = json.loads((run / "progress.json").read_text())
    # This process started when it did; a record naming another start is another process's.
    assert process_start(os.getpid()) is not None
    (run / "progress.json").write_text(json.dumps(progress | {"process_start": process_start(os.getpid())}))
    assert read_status(run)["state"] == "running"
    (run / "progress.json").write_text(
        json.dumps(progress | {"process_start": process_start(os.getpid()) - 1})
    )
    assert read_status(run)["state"].startswith("ended without closing")


def test_a_run_writes_its_process_start_beside_its_pid(short_run):
    progress = json.loads((short_run / "progress.json").read_text())
    assert isinstance(progress["process_start"], int) and progress["pid"] > 0


def test_broken_checkpoints_and_a_save_in_progress_are_not_listed_as_checkpoints(tmp_path):
    run = fake_run(tmp_path / "run", step=3, total=10, pid=0, ended=True)
    checkpoint(run, "step_2", 2)
    torn = checkpoint(run, "step_3", 3)
    (torn / "state.pt").write_bytes(b"")
    (run / "checkpoints" / "step_4.tmp").mkdir()
    status = read_status(run)
    assert status["checkpoints"] == ["step_2"]
    assert status["broken_checkpoints"] == {"step_3": "state.pt has 0 bytes, the manifest says 10"}


def test_garbled_metrics_lines_are_counted_not_averaged_in_silence(tmp_path):
    run = fake_run(tmp_path / "run", step=4, total=10, pid=0, ended=True)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    lines[1] = "\x00\x01garbage"
    lines[2] = "[1, 2]"
    (run / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 5, "rew')  # the last line cut
    status = read_status(run, window=10)
    assert status["unreadable_metrics_lines"] == 2  # the cut last line is a live run's, not counted
    assert status["means"]["reward"] == 0.25  # steps 1 and 4
    out = orz_cli_here("status", str(run))
    assert "metrics.jsonl: 2 unreadable line(s), left out of the means" in out.stdout


def test_a_progress_file_of_the_wrong_shape_is_one_line_naming_it(tmp_path):
    run = fake_run(tmp_path / "run", step=1, total=10, pid=0, ended=True)
    (run / "progress.json").write_text("[1, 2]")
    out = orz_cli_here("status", str(run))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"{run / 'progress.json'}: a JSON list, not the object orz-rl writes" in out.stderr
