"""``bench/gpu_check.py`` in the suite: its ``--device cpu --tiny`` mode runs the three trainings
a lent GPU machine would (activation checkpointing on, off, and a resume) on the embedded model,
and its JSON holds what the GPU run is judged by."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import REPO
from . import bench_module

STEPS = 2


@pytest.fixture(scope="module")
def tiny_check(tiny_model_dir, tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict, Path]:
    """The check at its smallest: 2 steps of 4 prompts x 3 responses (12, ORZ's critic steps) of at
    most 16 tokens (~60 s here)."""
    out = tmp_path_factory.mktemp("gpu-check") / "out" / "gpu_check.json"
    cmd = [sys.executable, "bench/gpu_check.py", "--device", "cpu", "--tiny", "--model", str(tiny_model_dir)]
    cmd += ["--steps", str(STEPS), "--prompts", "4", "--samples", "3", "--new-tokens", "16"]
    cmd += ["--out", str(out)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    return done, json.loads(out.read_text()), out.parent


def _verdicts(result: dict) -> dict[str, bool]:
    return {check: ok for check, ok, _ in result["verdicts"]}


def test_the_tiny_check_trains_with_and_without_activation_checkpointing_and_resumes(tiny_check):
    done, result, out = tiny_check
    runs = result["runs"]
    assert set(runs) == {"checkpointing", "no_checkpointing", "resume"}
    for name in ("checkpointing", "no_checkpointing"):
        log = (out / f"{name}.log").read_text()
        assert runs[name]["exit_code"] == 0 and runs[name]["steps"] == STEPS, log[-3000:]
        checkpointing = "--ppo.activation-checkpointing" in runs[name]["command"].split()
        assert checkpointing == (name == "checkpointing")
        assert "--rollout.backend transformers" in runs[name]["command"]
    assert runs["resume"]["exit_code"] == 0 and runs["resume"]["steps"] == 1
    assert runs["resume"]["from_step"] == STEPS - 1
    # Each run's output and metrics come back beside the JSON (the device tool returns $OUT).
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpointing.log",
        "checkpointing.metrics.jsonl",
        "gpu_check.json",
        "no_checkpointing.log",
        "no_checkpointing.metrics.jsonl",
        "resume.log",
    ]


def test_the_resume_ends_on_exactly_the_uninterrupted_runs_actor_on_a_cpu(tiny_check):
    _, result, _ = tiny_check
    resume = result["runs"]["resume"]
    assert resume["largest_difference"] == 0.0
    assert resume["same_prompts"] is True
    assert resume["last_step_largest_change"] > 0  # the step compared did move the actor
    verdicts = _verdicts(result)
    assert verdicts["resume: same actor parameters"] and verdicts["resume: same prompts"]


def test_each_run_holds_its_peak_memory_against_the_plan_of_the_same_command(tiny_check):
    _, result, _ = tiny_check
    for name in ("checkpointing", "no_checkpointing"):
        run = result["runs"][name]
        assert run["peak_gib"] > 0 and run["planned_gib"] > 0
        assert run["peak_over_plan"] == pytest.approx(run["peak_gib"] / run["planned_gib"])
        assert run["peak_of"] == "peak resident memory" and run["gpu_peak_gib"] is None
        assert run["plan_of"] == "training process (host memory)"
    # Activation checkpointing keeps fewer activations, and the plan counts fewer.
    assert result["runs"]["checkpointing"]["planned_gib"] < result["runs"]["no_checkpointing"]["planned_gib"]
    # A CPU run's resident memory also holds the interpreter and its libraries: not judged.
    assert not any("plan" in check for check in _verdicts(result))


def test_without_activation_checkpointing_the_sampling_log_probs_are_the_trainers(tiny_check):
    _, result, _ = tiny_check
    run = result["runs"]["no_checkpointing"]
    assert run["logprob_abs_diff_mean"] < 1e-4  # float32 on a CPU: rounding alone
    assert _verdicts(result)["no_checkpointing: sampling log-probs match the trainer's"]


def test_activation_checkpointing_changes_neither_the_sampling_nor_the_first_rollout(tiny_check):
    done, result, _ = tiny_check
    verdicts = _verdicts(result)
    assert verdicts["checkpointing: sampling log-probs match the trainer's"]
    assert verdicts["activation checkpointing leaves step 1's rollout unchanged"]
    assert result["ok"] and done.returncode == 0, done.stderr[-2000:]


def test_cuda_asked_for_where_there_is_none_fails_at_once_with_one_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "gpu_check.json"
    done = subprocess.run(
        [sys.executable, "bench/gpu_check.py", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "gpu_check: FAILED: CUDA available: torch.cuda.is_available() is False"
    )
    result = json.loads(out.read_text())
    assert result["ok"] is False and result["runs"] == {}


# --- what only a GPU run reaches, held here without one ------------------------------------------

H200 = {"cuda_available": True, "gpu": "NVIDIA H200", "bf16_supported": True, "gpu_memory_gib": 139.8}


def _gpu_check_module():
    return bench_module("gpu_check")


def test_on_cuda_the_runs_train_in_bfloat16_and_are_planned_as_one_training_gpu(tiny_model_dir, tmp_path):
    gpu_check = _gpu_check_module()
    args = gpu_check.train_args(gpu_check.GpuCheck(), H200, tiny_model_dir, tmp_path / "run", True)
    assert args[args.index("--model.dtype") + 1] == "bfloat16"
    total, device, _ = gpu_check.planned(args)
    assert device == "training GPU" and total > 0


def test_on_cuda_a_peak_past_the_tolerance_or_no_logged_gpu_peak_fails_the_memory_verdict():
    gpu_check = _gpu_check_module()

    def run(peak):
        ratio = None if peak is None else peak / 10.0
        return {"exit_code": 0, "steps": 2, "peak_gib": peak, "planned_gib": 10.0, "peak_over_plan": ratio}

    def verdicts(checkpointing, no_checkpointing):
        result = {
            "environment": H200,
            "runs": {"checkpointing": checkpointing, "no_checkpointing": no_checkpointing},
        }
        return {check: ok for check, ok, _ in gpu_check.verdicts(gpu_check.GpuCheck(), result)}

    judged = verdicts(run(12.5), run(12.6))
    assert judged["checkpointing: peak within 1.25x plan"]
    assert not judged["no_checkpointing: peak within 1.25x plan"]
    assert judged["CUDA available"] and judged["bfloat16 on the GPU"]
    assert not verdicts(run(None), run(10.0))["checkpointing: peak memory logged"]
