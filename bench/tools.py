"""Whether the tiny model learns to use the Python tool: ``cpu-tools`` with and without it.

    python bench/tools.py [--seeds 0 1 2] [--steps 60] [--out runs/tools]

Trains ``orz-rl train cpu-tools --seed S`` (products of two 3-digit numbers, the Python tool on)
and the same with ``--rollout.tools none`` (one turn, no tool), each seed in a process of its own,
for ``--steps`` steps into ``OUT/tool-S`` and ``OUT/none-S``; a run already complete there is
kept. Prints, per run, the first step whose last ten steps' mean reward reached 0.6, the seconds
of training up to it (the sum of ``time/step``, model build and start-up left out), the peak
10-step mean and the final share of tool calls per trajectory; then the medians per arm. Both
arms run one after the other on the same machine: compare them within one run of this script.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

import tyro

from orz_rl.recipes.cpu_default import CPU_TOOLS
from orz_rl.tools.compare import run_figures
from orz_rl.tools.plot import read_metrics

from training import complete, train_cpu_default

TARGET = 0.6
WINDOW = 10
ARMS: dict[str, tuple[str, ...]] = {"tool": (), "none": ("--rollout.tools", "none")}


@dataclass(frozen=True)
class Args:
    """What to run."""

    seeds: tuple[int, ...] = (0, 1, 2)
    """``--seed`` of each run."""
    steps: int = 60
    """Steps of each run."""
    out: Path = Path("runs/tools")
    """Where the runs go, one directory ``ARM-SEED`` each."""
    model: str = CPU_TOOLS.model.path
    """The recipe's tiny model (built there if missing)."""


def summary(rows: list[dict]) -> dict[str, float | None]:
    """``orz-rl compare``'s figures for the target (steps and seconds to it, ``None`` if never;
    the peak 10-step mean), and tool calls per trajectory over the last ten steps."""
    figures = run_figures(rows, (TARGET,), WINDOW)
    n = CPU_TOOLS.rollout.prompts_per_step * CPU_TOOLS.rollout.samples_per_prompt
    calls = statistics.mean(r.get("tool/calls", 0.0) / n for r in rows[-WINDOW:])
    return {"steps": figures.reached[0], "seconds": figures.seconds[0], "peak": figures.peak, "calls": calls}


def main(args: Args) -> None:
    results: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    for arm, extra in ARMS.items():
        for seed in args.seeds:
            run = args.out / f"{arm}-{seed}"
            if complete(run, args.steps):
                rows = read_metrics(run)
            else:
                fields = ["--seed", str(seed), "--max-steps", str(args.steps), "--max-minutes", "-1"]
                rows = train_cpu_default(
                    run,
                    *fields,
                    *extra,
                    "--data.train-file",
                    str(args.out / "products.json"),
                    model=args.model,
                    recipe="cpu-tools",
                )
            results[arm].append(summary(rows))
    print(f"\ncpu-tools, {args.steps} steps; target: a {WINDOW}-step mean reward of {TARGET}")
    print(f"{'arm':6} {'seed':>4} {'steps':>6} {'seconds':>8} {'peak':>6} {'calls':>6}")
    for arm, runs in results.items():
        for seed, r in zip(args.seeds, runs, strict=True):
            steps = "never" if r["steps"] is None else str(r["steps"])
            seconds = "-" if r["seconds"] is None else f"{r['seconds']:.0f}"
            print(f"{arm:6} {seed:>4} {steps:>6} {seconds:>8} {r['peak']:6.3f} {r['calls']:6.2f}")
        reached = [r["steps"] for r in runs if r["steps"] is not None]
        print(
            f"{arm:6} {'all':>4}: reached {TARGET} on {len(reached)} of {len(runs)} seeds; median peak "
            f"{statistics.median(r['peak'] for r in runs):.3f}"
        )
    print(f"then: orz-rl compare {args.out}/*")


if __name__ == "__main__":
    main(tyro.cli(Args))
