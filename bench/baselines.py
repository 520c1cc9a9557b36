"""ORZ's PPO against the critic-free baselines and DAPO on the CPU default: the runs behind
``docs/baselines.md``.

    python bench/baselines.py [--configs gae ... dapo] [--seeds 0 1 2] [--out runs/baselines]
    orz-rl compare runs/baselines/*

Trains ``orz-rl train cpu-default`` with each configuration's fields (:data:`CONFIGS`) and ``--seed
S``, once per configuration and seed, one after the other, each in a process of its own and for the
recipe's whole 200 steps (its 12-minute limit lifted), into ``OUT/NAME-S``; a run already complete
there is kept. ``orz-rl compare`` then draws their curves on one figure and prints the table
(``orz_rl.tools.compare``). Everything else is the CPU default's: a run without a critic builds none
and so takes shorter steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro

from training import complete, train_cpu_default

#: Each configuration's fields on top of the CPU default. DAPO (arXiv 2503.14476): GRPO's estimator
#: with clip-higher (0.28), dynamic sampling and the soft overlong penalty over the last 8 of the CPU
#: default's 32 tokens (DAPO: the last 4096 of 20480, a fifth; a quarter here, so that the toy's
#: ~20-token answers are near it). ``gae-stale1``: ORZ one step behind, with truncated importance
#: sampling at 2 (Yao et al.'s cap).
CONFIGS: dict[str, tuple[str, ...]] = {
    **{name: ("--ppo.advantage", name) for name in ("gae", "grpo", "rloo", "reinforce_pp")},
    "dapo": (
        "--ppo.advantage", "grpo", "--ppo.clip-epsilon-high", "0.28",
        "--rollout.dynamic-sampling", "--reward.overlong-penalty", "8",
    ),
    "gae-stale1": ("--rollout.max-staleness", "1", "--rollout.tis-cap", "2"),
}  # fmt: skip


@dataclass(frozen=True)
class Args:
    """What to run."""

    configs: tuple[Literal[tuple(CONFIGS)], ...] = tuple(CONFIGS)
    """The configurations to run (``CONFIGS``): ``ppo.advantage`` of each estimator, ``dapo``, or
    ``gae-stale1``."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """``--seed`` of each run."""
    out: Path = Path("runs/baselines")
    """Where the runs go, one directory ``NAME-SEED`` each."""
    steps: int = 200
    """Steps of each run (the CPU default's whole run)."""


def main(args: Args) -> None:
    for name in args.configs:
        for seed in args.seeds:
            run = args.out / f"{name}-{seed}"
            if complete(run, args.steps):
                print(f"{run}: complete, kept")
                continue
            fields = [*CONFIGS[name], "--seed", str(seed), "--max-steps", str(args.steps)]
            train_cpu_default(run, *fields, "--max-minutes", "-1")
    print(f"then: orz-rl compare {args.out}/*")


if __name__ == "__main__":
    main(tyro.cli(Args))
