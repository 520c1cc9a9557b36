"""How the benchmarks here train: ``orz-rl train cpu-default`` (or another recipe) in a process of
its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from orz_rl.recipes.cpu_default import CPU_DEFAULT


def train_cpu_default(
    run_dir: Path,
    *fields: str,
    model: str = CPU_DEFAULT.model.path,
    quiet: bool = False,
    recipe: str = "cpu-default",
) -> list[dict]:
    """Train the CPU default (or ``recipe``) from scratch into ``run_dir`` (no progress bar, no
    auto-resume) with ``fields`` added, as a user types it; return its ``metrics.jsonl`` rows. The
    command is printed first, and the run's output shows, unless ``quiet``."""
    cmd = [sys.executable, "-m", "orz_rl.cli", "train", recipe, *fields]
    cmd += ["--model.path", model, "--run-dir", str(run_dir), "--no-progress", "--no-auto-resume"]
    if not quiet:
        print(" ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL if quiet else None)
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def complete(run: Path, steps: int) -> bool:
    """Whether ``run`` already logged ``steps`` steps."""
    path = run / "metrics.jsonl"
    if not path.is_file():
        return False
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return any(r.get("step") == steps for r in rows)
