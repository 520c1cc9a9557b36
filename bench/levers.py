"""What each speed lever of a step is worth on the CPU default, against all of them off, in one run.

    python bench/levers.py [--steps 16] [--skip 4] [--rounds 2]

Trains ``orz-rl train cpu-default`` for ``--steps`` steps once per configuration below, each in a
process of its own, and prints the median seconds of a step (leaving out the first ``--skip``,
which pay for warm-up) and its ratio to the baseline:

* ``baseline``: a separate no-grad actor pass for PPO's old log-probs, the critic's update after
  the rollout, generation with vLLM;
* ``+ old log-probs from the update``: the policy loss takes them from its own pass
  (``ppo.old_log_probs_from_update``);
* ``+ critic update during the next rollout`` (``ppo.overlap_critic_update``, off by default);
* the same two with transformers' ``generate`` (``rollout.backend``; the CPU default's ``auto``
  picks it), the first of them being the CPU default as it runs.

The configurations run in turn, ``--rounds`` times over, so that a machine that slows down
during the run slows all of them; each configuration's figure is the median over its rounds.
The levers change no number of the run (``tests/ppo/test_losses.py``, ``tests/test_trainer.py``);
the backends sample from the same distribution with other random draws.
"""

from __future__ import annotations

import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

import tyro

from orz_rl.recipes.cpu_default import CPU_DEFAULT

from training import train_cpu_default

VLLM, GENERATE = ("--rollout.backend", "vllm"), ("--rollout.backend", "transformers")
CONFIGS: dict[str, tuple[str, ...]] = {
    "baseline (vllm)": ("--ppo.no-old-log-probs-from-update", *VLLM),
    "+ old log-probs from the update": VLLM,
    "+ critic update during the next rollout": ("--ppo.overlap-critic-update", *VLLM),
    "generate: the CPU default": GENERATE,
    "generate: + critic update during the rollout": ("--ppo.overlap-critic-update", *GENERATE),
}


@dataclass(frozen=True)
class Args:
    """What to run."""

    steps: int = 16
    """Training steps per configuration and round."""
    skip: int = 4
    """Leading steps of each run left out (warm-up)."""
    rounds: int = 2
    """Times every configuration runs, in turn."""
    model: str = CPU_DEFAULT.model.path
    """The tiny model (built there if missing)."""


def step_seconds(args: Args, extra: tuple[str, ...], tmp: Path) -> list[float]:
    """``time/step`` of each step after the first ``args.skip`` of one run with ``extra`` fields."""
    fields = ["--max-steps", str(args.steps), "--data.train-file", str(tmp / "toy.json")]
    rows = train_cpu_default(
        tmp / "run", *fields, "--save-interval", "0", *extra, model=args.model, quiet=True
    )
    return [r["time/step"] for r in rows[args.skip :]]


def main(args: Args) -> None:
    seconds: dict[str, list[float]] = {name: [] for name in CONFIGS}
    for round_ in range(args.rounds):
        for name, extra in CONFIGS.items():
            with tempfile.TemporaryDirectory() as tmp:
                seconds[name].append(statistics.median(step_seconds(args, extra, Path(tmp))))
            print(f"round {round_ + 1}: {name}: {seconds[name][-1]:.2f} s a step", flush=True)
    base = statistics.median(seconds["baseline (vllm)"])
    print(f"\nmedian seconds a step over {args.rounds} rounds of {args.steps - args.skip} steps")
    for name, runs in seconds.items():
        median = statistics.median(runs)
        print(f"{name:46} {median:6.2f} s  {median / base:5.2f}x baseline")


if __name__ == "__main__":
    main(tyro.cli(Args))
