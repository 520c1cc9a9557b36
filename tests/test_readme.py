"""The README is short and its code runs as written: the three how-tos (a task of one's own, a
recipe of one's own, the collector in a plain TorchRL script), each in a directory outside the
checkout, as a user would run them."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from .conftest import REPO

ORZ_RL = Path(sys.executable).parent / "orz-rl"


def readme() -> str:
    return (REPO / "README.md").read_text()


def block(marker: str, language: str = "python", after: int = 0) -> str:
    """The ``after``-th ``language`` code block following ``marker`` (a comment line in the README)."""
    text = readme()
    rest = text[text.index(marker) + len(marker) :]
    return re.findall(rf"```{language}\n(.*?)```", rest, re.DOTALL)[after]


def user_dir(tmp_path: Path, tiny_model_dir: Path) -> Path:
    """A directory of one's own, with the CPU default's model where its recipe looks for it."""
    home = tmp_path / "mine"
    (home / "artifacts").mkdir(parents=True)
    (home / "artifacts" / "tiny-qwen2").symlink_to(tiny_model_dir)
    return home


def run(cwd: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": ""}
    out = subprocess.run([*args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def test_the_readme_reads_in_minutes_and_has_the_three_how_tos():
    text = readme()
    assert len(text.splitlines()) <= 300
    for how_to in ("a task of your own", "a recipe of your own", "the collector in your own TorchRL loop"):
        assert f"## How to: {how_to}" in text


def test_readme_task_and_recipe_train_from_a_directory_of_ones_own(tiny_model_dir, tmp_path):
    home = user_dir(tmp_path, tiny_model_dir)
    (home / "my_task.py").write_text(block("<!-- how-to: task"))
    (home / "my_recipe.py").write_text(block("<!-- how-to: recipe"))
    for marker, run_dir in (("<!-- how-to: task", "task-run"), ("<!-- how-to: recipe", "recipe-run")):
        (command,) = [line.split("#")[0] for line in block(marker, "bash").splitlines()[:1]]
        args = shlex.split(command)
        assert args[0] == "orz-rl"
        run(home, str(ORZ_RL), *args[1:], "--max-steps", "2", "--no-progress", "--run-dir", run_dir)
        rows = [json.loads(line) for line in (home / run_dir / "metrics.jsonl").read_text().splitlines()]
        assert len(rows) == 2 and all(0 <= r["parity/answered"] <= 256 for r in rows)
    config = json.loads((home / "recipe-run" / "config.json").read_text())
    assert config["task"] == "my_task.py:TASK" and config["rollout"]["prompts_per_step"] == 16


MARKER = "<!-- example: vllm-collector (tests/test_readme.py runs it) -->"


def test_readme_collector_example_runs_with_vllm_outside_the_trainer(tiny_model_dir, tmp_path):
    home = user_dir(tmp_path, tiny_model_dir)
    script = home / "collect.py"
    script.write_text(block(MARKER))
    assert "orz_rl.trainer" not in script.read_text()
    out = run(home, sys.executable, str(script))
    # three rollouts of 2 prompts x 4 samples, each tagged with the weights that sampled it
    assert "24 responses; policy versions [0, 1, 2]" in out.stdout
    rows = [line for line in out.stdout.splitlines() if re.match(r"[01] (stop|length) ", line)]
    assert len(rows) == 4
