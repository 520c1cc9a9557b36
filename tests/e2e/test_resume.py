"""Runs that survive: exact resume after SIGKILL, torn checkpoints skipped, SIGINT saves.

Every run is ``orz-rl train cpu-default`` in a process of its own, as a user
starts it (vLLM rollouts, evaluation every 2 steps, a checkpoint every 2 steps).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from orz_rl.runtime.checkpoint import check_checkpoint, latest_checkpoint, load_state

from ..conftest import REPO, SHORT_RUN_ARGS, SHORT_RUN_STEPS, cpu_default_on, orz_cli

STEPS, RUN_ARGS = SHORT_RUN_STEPS, SHORT_RUN_ARGS


def _start(args: list[str]) -> subprocess.Popen:
    # A session of its own: SIGKILL to the group takes the trainer and its grader workers at once,
    # as a node failure would.
    return subprocess.Popen(
        [sys.executable, "-m", "orz_rl.cli", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for_steps(metrics: Path, n: int, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= n:
            return
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.05)
    raise TimeoutError(f"{metrics} never reached {n} steps")


def _tensors(run: Path, part: str) -> dict:
    directory = run / "checkpoints" / "final" / part
    return {k: v for f in sorted(directory.glob("*.safetensors")) for k, v in load_file(f).items()}


@pytest.fixture(scope="module")
def uninterrupted(short_run) -> Path:
    return short_run


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_to_the_same_weights_and_prompts(
    uninterrupted, tiny_model_dir, tmp_path
):
    args = [*cpu_default_on(tiny_model_dir, tmp_path), *RUN_ARGS]
    run = tmp_path / "run"
    proc = _start(args)
    _wait_for_steps(run / "metrics.jsonl", 5, proc)  # checkpoints at steps 2 and 4 exist by now
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 5

    resumed = orz_cli(*args, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"orz-rl: resuming from {run / 'checkpoints' / 'step_4'} (step 4 of {STEPS})" in resumed.stdout

    for part in ("actor", "critic"):
        ours, theirs = _tensors(run, part), _tensors(uninterrupted, part)
        assert ours.keys() == theirs.keys()
        assert all(ours[k].equal(theirs[k]) for k in ours), f"{part} weights differ"  # bitwise
    prompts = [json.loads(line)["prompt_ids"] for line in (run / "prompts.jsonl").read_text().splitlines()]
    expected = (uninterrupted / "prompts.jsonl").read_text()
    assert (run / "prompts.jsonl").read_text() == expected and len(prompts) == STEPS
    # 36 prompts, 32 a step: the first pass and the start of the second, none lost, none repeated.
    assert sorted(sum(prompts[:1], []) + prompts[1][:4]) == list(range(36))
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    straight = [json.loads(line) for line in (uninterrupted / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert [r["reward/mean"] for r in rows] == [r["reward/mean"] for r in straight]
    assert [r["data/policy_version"] for r in rows] == list(range(STEPS))


def test_keep_last_retains_the_newest_step_checkpoints_and_a_linked_final(uninterrupted):
    names = sorted(p.name for p in (uninterrupted / "checkpoints").iterdir())
    assert names == ["final", "step_4", "step_6"]
    # final is step 6's state: linked to its files, not written a second time.
    weights = "actor/model.safetensors"
    assert (uninterrupted / "checkpoints" / "final" / weights).samefile(
        uninterrupted / "checkpoints" / "step_6" / weights
    )
    state = load_state(uninterrupted / "checkpoints" / "step_4")
    assert state["step"] == 4 and len(state["history"]) == 4 and len(state["prompt_log"]) == 4
    assert {"actor_optim", "critic_optim", "actor_sched", "critic_sched", "rng", "sampler"} <= state.keys()


def test_a_truncated_checkpoint_is_skipped_with_a_message_and_the_previous_one_used(uninterrupted, tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    for name in ("step_4", "step_6"):
        subprocess.run(
            ["cp", "-r", str(uninterrupted / "checkpoints" / name), str(run / "checkpoints")], check=True
        )
    weights = run / "checkpoints" / "step_6" / "actor" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a write cut short
    messages = []
    assert latest_checkpoint(run, report=messages.append) == run / "checkpoints" / "step_4"
    size = (uninterrupted / "checkpoints" / "step_6" / "actor" / "model.safetensors").stat().st_size
    assert messages == [
        f"orz-rl: skipping checkpoint {run / 'checkpoints' / 'step_6'}: "
        f"actor/model.safetensors has 1000 bytes, the manifest says {size}"
    ]
    (run / "checkpoints" / "step_4" / "MANIFEST.json").unlink()  # a checkpoint never finished
    assert latest_checkpoint(run, report=messages.append) is None
    assert "step_4: no readable MANIFEST.json" in messages[-1]


@pytest.mark.slow
def test_sigint_during_training_leaves_a_complete_checkpoint_and_exits_cleanly(tiny_model_dir, tmp_path):
    args = [
        *cpu_default_on(tiny_model_dir, tmp_path),
        "--max-steps",
        "50",
        "--save-interval",
        "0",
        "--no-progress",
    ]
    run = tmp_path / "run"
    proc = _start(args)
    _wait_for_steps(run / "metrics.jsonl", 2, proc)
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the whole foreground group
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr[-3000:]
    steps = len((run / "metrics.jsonl").read_text().splitlines())
    checkpoint = run / "checkpoints" / f"step_{steps}"
    assert f"orz-rl: SIGINT at step {steps}: saved {checkpoint}" in stdout
    assert check_checkpoint(checkpoint) is None and load_state(checkpoint)["step"] == steps
    assert "Traceback" not in stderr
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["grader/failures"] == last["grader/restarts"] == 0  # the checkers lived through it


def test_resuming_with_other_settings_names_each_changed_field(short_run, tiny_model_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(short_run, copy)
    args = [*cpu_default_on(tiny_model_dir, short_run.parent), *SHORT_RUN_ARGS, "--resume", str(copy)]
    out = orz_cli(*args, "--ppo.clip-epsilon", "0.3", "--max-steps", "8", "--keep-last", "5")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "the configuration cannot run (1 problem(s)):" in out.stderr  # max_steps, keep_last may change
    assert "ppo.clip_epsilon = 0.3 differs from the checkpoint's run (0.2)" in out.stderr
    assert "orz-rl: task" not in out.stdout  # nothing started
