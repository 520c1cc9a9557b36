"""ORZ's PPO against the critic-free baselines on the CPU default: the runs behind ``docs/baselines.md``.

    python bench/baselines.py [--estimators gae grpo rloo reinforce_pp] [--seeds 0 1 2] [--out runs/baselines]
    orz-rl compare runs/baselines/*

Trains ``orz-rl train cpu-default --ppo.advantage NAME --seed S`` once per estimator and seed, one
after the other, each in a process of its own and for the recipe's whole 200 steps (its 12-minute
limit lifted), into ``OUT/NAME-S``; a run already complete there is kept. ``orz-rl compare`` then
draws their curves on one figure and prints the table (``orz_rl.tools.compare``). Everything but the
estimator is the CPU default's: a run without a critic builds none and so takes shorter steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tyro

from training import complete, train_cpu_default


@dataclass(frozen=True)
class Args:
    """What to run."""

    estimators: tuple[str, ...] = ("gae", "grpo", "rloo", "reinforce_pp")
    """``ppo.advantage`` of each run."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """``--seed`` of each run."""
    out: Path = Path("runs/baselines")
    """Where the runs go, one directory ``NAME-SEED`` each."""
    steps: int = 200
    """Steps of each run (the CPU default's whole run)."""


def main(args: Args) -> None:
    for name in args.estimators:
        for seed in args.seeds:
            run = args.out / f"{name}-{seed}"
            if complete(run, args.steps):
                print(f"{run}: complete, kept")
                continue
            fields = ["--ppo.advantage", name, "--seed", str(seed), "--max-steps", str(args.steps)]
            train_cpu_default(run, *fields, "--max-minutes", "-1")
    print(f"then: orz-rl compare {args.out}/*")


if __name__ == "__main__":
    main(tyro.cli(Args))
