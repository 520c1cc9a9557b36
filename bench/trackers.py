"""What each tracker of ``--log.backends`` costs a training step: milliseconds a step, against
writing the step's line of ``metrics.jsonl`` (which every run does) in the same process.

    WANDB_MODE=offline python bench/trackers.py [--steps 200] [--out runs/bench-trackers]

Each backend logs ``--steps`` steps of 75 scalars and two sampled responses (a 600-character
prompt, a 200-character response), the size of a CPU default step, through
:class:`orz_rl.runtime.trackers.Trackers`, as the trainer calls it. Printed per backend: the
seconds to start, the median milliseconds a step (over five blocks of ``--steps / 5`` steps),
that median over the JSONL line's, and the milliseconds a step without the samples.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import tyro

from orz_rl.config import LogConfig
from orz_rl.runtime.trackers import Trackers

from timing import timed

METRICS = {f"group{i % 8}/metric{i}": float(i) / 7 for i in range(75)}
SAMPLES = [
    {"prompt": "p" * 600, "response": "r" * 200, "reward": 1.0},
    {"prompt": "p" * 600, "response": "s" * 200, "reward": 0.0},
]


@dataclass(frozen=True)
class Args:
    """What to time."""

    steps: int = 200
    """Steps each backend logs (a multiple of 5)."""
    out: Path = Path("runs/bench-trackers")
    """Where each backend writes (emptied first)."""
    backends: tuple[str, ...] = ("tensorboard", "csv", "wandb", "mlflow")
    """Backends to time."""


def per_step_ms(log, steps: int) -> float:
    """Median milliseconds a step of ``log(step)`` over five blocks of ``steps / 5`` steps, the
    steps numbered on from block to block."""
    block, numbers = steps // 5, itertools.count(1)

    def run_block() -> None:
        for _ in range(block):
            log(next(numbers))

    seconds, _ = timed(run_block, repeats=5, warm_up=False)
    return seconds / block * 1000


def main(args: Args) -> None:
    if os.environ.get("WANDB_MODE") != "offline" and "wandb" in args.backends:
        raise SystemExit("set WANDB_MODE=offline: this benchmark writes W&B's files, it uploads nothing")
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    with (args.out / "metrics.jsonl").open("a", buffering=1) as f:
        baseline = per_step_ms(lambda s: f.write(json.dumps({"step": s, **METRICS}) + "\n"), args.steps)
    print(f"{'jsonl line':12s} {'':>10s} {baseline:8.3f} ms a step   1.0x")
    for backend in args.backends:
        figures, starts = [], []
        for samples in (SAMPLES, []):
            run_dir = args.out / f"{backend}-{len(samples)}-samples"
            run_dir.mkdir()
            start = time.perf_counter()
            trackers = Trackers(run_dir, LogConfig(backends=("jsonl", backend)), step=0, logged=0, config={})
            starts.append(time.perf_counter() - start)  # the first pays the imports
            figures.append(per_step_ms(lambda s, t=trackers, x=samples: t.log(s, METRICS, x), args.steps))
            trackers.close()
        ms, scalars = figures
        print(
            f"{backend:12s} start {starts[0]:4.1f} s {ms:8.3f} ms a step {ms / baseline:6.0f}x"
            f"   (scalars alone {scalars:.3f} ms)"
        )


if __name__ == "__main__":
    main(tyro.cli(Args))
