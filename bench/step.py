"""Where a training step's time goes: the CPU default, phase by phase, and how much is not the model.

    python bench/step.py [--steps 12] [--skip 2] [--pack-tokens -1]

Trains the CPU default (``recipes/cpu_default.py``) for ``--steps`` steps in this
process and averages the steps after the first ``--skip`` (the first ones pay
for warm-up). For each phase of ``Trainer.train_step`` it prints seconds and share of
the step. Then the split that matters at ORZ's scale:

* **model**: the vLLM engine's ``generate`` calls (sampling is the model's forward)
  and the trainer's forward and backward passes of actor and critic (with the loss
  on their outputs); ``time/model_engine`` and ``time/model_forward_backward``;
* **outside the model**: everything else in the step: TorchRL's wrappers and
  collector, the env, grading, advantages, TensorDict plumbing, optimiser steps,
  gradient clipping, weight sync.

It also prints the pad-token share of the training forward passes, padded to the
longest and packed (``ppo.pack_tokens``; ``--pack-tokens 0`` runs without packing).
"""

from __future__ import annotations

import statistics
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import tyro

from orz_rl.recipes.cpu_default import CPU_DEFAULT
from orz_rl.runtime.quiet import quiet_known_noise

#: Trainer phases in step order, with the names the issue uses.
PHASES = (
    ("generation", "generation (engine + TorchRL collector)"),
    ("scoring", "grading"),
    ("old_log_probs", "old log-probs (actor forward; only with --ppo.no-old-log-probs-from-update)"),
    ("critic_values", "critic values (critic forward)"),
    ("advantages", "GAE + normalisation"),
    ("policy_update", "policy update"),
    ("weight_sync", "weight sync into vLLM"),
    ("critic_update", "critic updates (12 mini-batches)"),
)


@dataclass(frozen=True)
class Args:
    """What to run."""

    steps: int = 12
    """Training steps to run."""
    skip: int = 2
    """Leading steps left out of the averages (warm-up)."""
    pack_tokens: int = -1
    """``ppo.pack_tokens`` (-1: the recipe's packing; 0: pad to the longest)."""
    model: str = CPU_DEFAULT.model.path
    """The tiny model (built there if missing)."""


def main(args: Args) -> None:
    quiet_known_noise()  # before the trainer imports vLLM
    from orz_rl.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        cfg = replace(
            CPU_DEFAULT,
            model=replace(CPU_DEFAULT.model, path=args.model),
            data=replace(CPU_DEFAULT.data, train_file=str(Path(tmp) / "toy.json")),
            ppo=replace(CPU_DEFAULT.ppo, pack_tokens=args.pack_tokens),
            run_dir=Path(tmp) / "run",
            max_steps=args.steps,
            progress=False,
            save_interval=0,
            auto_resume=False,
        )
        history = Trainer(cfg).train()[args.skip :]

    def mean(key: str) -> float:
        return statistics.fmean(m.get(key, 0.0) for m in history)

    step = mean("time/step")
    print(f"CPU default, mean of steps {args.skip + 1}-{args.steps} (ppo.pack_tokens = {args.pack_tokens})")
    print(f"{'phase':42s} {'seconds':>8s} {'share':>7s}")
    for key, name in PHASES:
        print(f"{name:42s} {mean('time/' + key):8.3f} {mean('time/' + key) / step:7.1%}")
    print(f"{'step':42s} {step:8.3f} {1:7.1%}")
    print()
    engine, fwd_bwd, outside = (
        mean("time/model_engine"),
        mean("time/model_forward_backward"),
        mean("time/outside_model"),
    )
    print(f"{'model: vLLM generate':42s} {engine:8.3f} {engine / step:7.1%}")
    print(f"{'model: actor/critic forward + backward':42s} {fwd_bwd:8.3f} {fwd_bwd / step:7.1%}")
    print(f"{'outside the model':42s} {outside:8.3f} {outside / step:7.1%}")
    print()
    print(
        f"pad tokens in the training passes: padded to the longest {mean('data/pad_share_padded'):.1%}, "
        f"packed {mean('data/pad_share_packed'):.1%}"
    )


if __name__ == "__main__":
    main(tyro.cli(Args))
