"""A run never starts over silently: checkpoints that do not load, or a history without one, are
refused with each named, and ``--fresh`` moves the old run aside instead of writing over it."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace

import pytest

from orz_rl.recipes.cpu_default import CPU_DEFAULT
from orz_rl.runtime.checkpoint import check_checkpoint
from orz_rl.runtime.preflight import RunHistoryError, find_resume_checkpoint, move_run_aside

from ..conftest import SHORT_RUN_ARGS, cpu_default_on, orz_cli


def checkpoint(run, name, step, manifest=None):
    """A checkpoint folder with one file and its manifest (``manifest``: written instead)."""
    folder = run / "checkpoints" / name
    folder.mkdir(parents=True)
    (folder / "state.pt").write_bytes(b"x" * 10)
    digest = hashlib.sha256(b"x" * 10).hexdigest()
    written = {"step": step, "files": {"state.pt": {"bytes": 10, "sha256": digest}}}
    (folder / "MANIFEST.json").write_text(json.dumps(written if manifest is None else manifest))
    return folder


def config(run, **fields):
    return replace(CPU_DEFAULT, run_dir=run, **fields)


def test_a_new_run_dir_starts_fresh_and_a_complete_checkpoint_resumes(tmp_path):
    assert find_resume_checkpoint(config(tmp_path / "new")) is None
    good = checkpoint(tmp_path / "run", "step_2", 2)
    assert check_checkpoint(good) is None
    assert find_resume_checkpoint(config(tmp_path / "run")) == good


def test_checkpoints_none_of_which_loads_are_one_error_naming_each_and_the_way_to_start_over(tmp_path):
    run = tmp_path / "run"
    checkpoint(run, "step_4", 4, manifest=[])  # a manifest of the wrong shape
    torn = checkpoint(run, "step_6", 6)
    (torn / "state.pt").write_bytes(b"x")  # a write cut short
    (run / "metrics.jsonl").write_text("{}\n" * 6)
    with pytest.raises(RunHistoryError) as error:
        find_resume_checkpoint(config(run))
    message = str(error.value)
    assert "holds 2 checkpoint(s) and none can be resumed from" in message
    assert f"{torn}: state.pt has 1 bytes, the manifest says 10" in message
    assert f"{run / 'checkpoints' / 'step_4'}: MANIFEST.json is not a manifest orz-rl writes" in message
    assert "--fresh" in message and "nothing is deleted" in message


def test_a_history_without_a_checkpoint_is_refused_and_so_is_no_auto_resume_over_one(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2}\n')
    with pytest.raises(RunHistoryError, match=r"history \(2 step\(s\) in metrics.jsonl\) and no checkpoint"):
        find_resume_checkpoint(config(run))
    good = checkpoint(tmp_path / "other", "final", 3)
    with pytest.raises(RunHistoryError, match=f"{good}: complete, but --no-auto-resume"):
        find_resume_checkpoint(config(tmp_path / "other", auto_resume=False))


def test_fresh_moves_the_old_run_aside_whole_and_never_over_an_earlier_one(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 1}\n')
    first = move_run_aside(run)
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 7}\n')
    second = move_run_aside(run)
    assert first != second and not run.exists()
    assert (first / "metrics.jsonl").read_text() == '{"step": 1}\n'
    assert (second / "metrics.jsonl").read_text() == '{"step": 7}\n'
    assert move_run_aside(tmp_path / "nothing") is None


def test_train_refuses_a_run_whose_checkpoints_are_all_broken_and_fresh_keeps_its_history(
    short_run, tiny_model_dir, tmp_path
):
    copy = tmp_path / "run"
    shutil.copytree(short_run, copy)
    for folder in (copy / "checkpoints").iterdir():
        (folder / "MANIFEST.json").unlink()
    before = {
        name: (copy / name).read_bytes() for name in ("metrics.jsonl", "prompts.jsonl", "rollouts.jsonl")
    }
    args = [*cpu_default_on(tiny_model_dir, tmp_path), *SHORT_RUN_ARGS]
    out = orz_cli(*args)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "none can be resumed from" in out.stderr and "--fresh" in out.stderr
    assert {name: (copy / name).read_bytes() for name in before} == before  # not a byte rewritten
    out = orz_cli(*args, "--fresh", "--max-steps", "1", "--eval.interval", "0", timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    (aside,) = [p for p in tmp_path.iterdir() if p.name.startswith("run.old-")]
    assert f"orz-rl: --fresh: the run that was in {copy} is now in {aside}" in out.stdout
    assert {name: (aside / name).read_bytes() for name in before} == before
    assert len((copy / "metrics.jsonl").read_text().splitlines()) == 1
