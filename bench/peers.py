"""Time to reward against the peer a user would pick instead: TRL's GRPOTrainer on the CPU default.

    python bench/peers.py [--steps 200] [--target 0.6] [--seeds 0 1 2]

Runs, back to back on this machine, each in a process of its own and once per seed:

* ``orz-rl train cpu-default`` as a user runs it (ORZ's PPO: a critic with 12 mini-batch steps
  per rollout, GAE gamma = lambda = 1, one policy step per rollout, no KL; its generation backend
  as ``auto`` picks it);
* TRL's ``GRPOTrainer`` (the ``bench`` extra of ``pyproject.toml``) on the same workload: the
  same embedded tiny model and its tokenizer, the same 36 addition prompts in ORZ's template,
  32 prompts x 8 samples a step, at most 32 new tokens, temperature 1 without top-k or top-p,
  one optimiser step per rollout, no KL, AdamW with the actor's learning rate, warm-up, betas
  and gradient clipping, and ORZ's reward rule (:func:`orz_rl.rewards.math_answers.math_reward`:
  1 iff the response stopped and its boxed answer is right);

and prints for each run: median seconds a step, the step and the training seconds (sum of the step
times before it) at which the mean reward of the last 10 steps first reaches ``--target``, the
highest 10-step mean; then each side's median over the seeds (a run that never reaches the target
counts as slower than any that does) and the ratios orz-rl / TRL. One seed is not enough to
compare: the step at which either side reaches 0.6 moves by tens of steps from seed to seed.
The sides alternate which runs first from one seed to the next.

What differs is the algorithm, on purpose, so do not read this as a like-for-like algorithm test:
TRL runs GRPO (no critic: each response's advantage is its reward minus its group's mean, over the
group's std; TRL's default ``dapo`` loss aggregation) where orz-rl runs ORZ's PPO (a learned critic
trained 12 steps a rollout, per-token GAE advantages normalised over the batch, ORZ's
sequence-then-token mean). TRL generates with transformers' ``generate`` and stops at EOS only
(orz-rl's engines also stop at ``</answer>``, which the tiny model follows with EOS); orz-rl
generates with the backend ``auto`` picks. Absolute seconds differ between machines by 2x and
more: compare the two only within one run of this script.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import tyro

from orz_rl.recipes.cpu_default import CPU_DEFAULT
from orz_rl.tools.compare import first_reaching


@dataclass(frozen=True)
class Args:
    """What to run."""

    steps: int = 200
    """Training steps of each run (the CPU default's whole run is 200)."""
    target: float = 0.6
    """The 10-step mean reward each run is timed to."""
    model: str = CPU_DEFAULT.model.path
    """The tiny model (orz-rl builds it there if missing)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """One run of each side per seed (``--seed`` of orz-rl, ``seed`` of TRL)."""
    only: str = ""
    """Run only ``orz-rl`` or ``trl`` (empty: both)."""
    keep: Path | None = None
    """Keep every run's files in this directory (default: a temporary one, removed)."""
    trl_worker: str = ""
    """Internal: run TRL and write its per-step rows to this JSONL file."""


def summary(rows: list[dict], target: float) -> dict:
    """Median step seconds, the step and seconds to ``target``, and the peak 10-step mean."""
    rewards, seconds = [r["reward"] for r in rows], [r["seconds"] for r in rows]
    step = first_reaching(rewards, target)
    means = [statistics.fmean(rewards[i - 10 : i]) for i in range(10, len(rewards) + 1)]
    return {
        "s_per_step": statistics.median(seconds),
        "step": step,
        "seconds": sum(seconds[:step]) if step else None,
        "peak": max(means, default=float("nan")),
        "steps": len(rows),
    }


def run_orz(args: Args, tmp: Path, seed: int) -> list[dict]:
    """``orz-rl train cpu-default`` in a process of its own; its rows from ``metrics.jsonl``."""
    run = tmp / f"orz-{seed}"
    cmd = [sys.executable, "-m", "orz_rl.cli", "train", "cpu-default", "--max-steps", str(args.steps)]
    cmd += ["--seed", str(seed)]
    cmd += ["--model.path", args.model, "--data.train-file", str(tmp / "toy.json")]
    cmd += ["--run-dir", str(run), "--no-progress", "--no-auto-resume", "--max-minutes", "-1"]
    subprocess.run(cmd, check=True)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{"reward": r["reward/mean"], "seconds": r["time/step"]} for r in rows]


def run_trl(args: Args, tmp: Path, seed: int) -> list[dict]:
    """TRL in a process of its own (this script with ``--trl-worker``); its rows."""
    out = tmp / f"trl-{seed}.jsonl"
    cmd = [sys.executable, __file__, "--model", args.model, "--steps", str(args.steps), "--seeds", str(seed)]
    subprocess.run([*cmd, "--trl-worker", str(out)], check=True)
    return [json.loads(line) for line in out.read_text().splitlines()]


def trl_worker(args: Args, out: Path) -> None:
    """GRPO on the CPU default's workload (the module docstring lists what is the same)."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from orz_rl.models.loading import load_causal_lm, load_tokenizer
    from orz_rl.problems.prompts import render_prompt
    from orz_rl.problems.toy_task import addition_problems
    from orz_rl.rewards.math_answers import math_reward

    cpu, tok = CPU_DEFAULT, load_tokenizer(args.model)
    problems = addition_problems(max_operand=cpu.data.toy_max_operand)
    data = Dataset.from_list([{"prompt": render_prompt(q, tok.bos_token), "answer": a} for q, a in problems])
    eos = set(tok.all_special_ids) & {tok.eos_token_id}

    def orz_reward(completions, completion_ids, answer, **_) -> list[float]:
        # ORZ's rule: a response the token limit cut (no EOS) earns 0.
        rows = zip(completions, completion_ids, answer, strict=True)
        return [math_reward(text, bool(eos & set(ids)), truth) for text, ids, truth in rows]

    r, o = cpu.rollout, cpu.optim
    per_step = r.prompts_per_step * r.samples_per_prompt
    config = GRPOConfig(
        output_dir=str(out.parent / f"trl-run-{args.seeds[0]}"),
        use_cpu=True,
        max_steps=args.steps,
        per_device_train_batch_size=cpu.ppo.micro_batch_size,
        gradient_accumulation_steps=per_step // cpu.ppo.micro_batch_size,
        num_generations=r.samples_per_prompt,
        max_completion_length=r.max_new_tokens,
        temperature=r.temperature,
        top_p=r.top_p,
        top_k=r.top_k,
        num_iterations=1,
        beta=0.0,
        learning_rate=o.actor_lr,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=o.warmup_steps,
        adam_beta1=o.betas[0],
        adam_beta2=o.betas[1],
        weight_decay=o.weight_decay,
        max_grad_norm=cpu.ppo.max_grad_norm,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        seed=args.seeds[0],
    )
    rows: list[dict] = []

    class StepLog(TrainerCallback):
        def on_step_begin(self, *_, **__):
            self.start = time.perf_counter()

        def on_step_end(self, *_, **__):
            rows.append({"seconds": time.perf_counter() - self.start})

        def on_log(self, _args, _state, _control, logs=None, **__):
            if logs and "reward" in logs and rows and "reward" not in rows[-1]:
                rows[-1]["reward"] = logs["reward"]

    model = load_causal_lm(args.model)
    trainer = GRPOTrainer(
        model=model, reward_funcs=orz_reward, args=config, train_dataset=data, processing_class=tok
    )
    trainer.add_callback(StepLog())
    trainer.train()
    out.write_text("".join(json.dumps(row) + "\n" for row in rows if "reward" in row))


def _median_reached(values: list[float | None]) -> float | None:
    """The (lower) median, ``None`` (never reached the target) sorting after every number."""
    return sorted(values, key=lambda v: (v is None, v or 0))[(len(values) - 1) // 2]


def median_run(runs: list[dict]) -> dict:
    """The median over seeds of the step and seconds to the target (a run that never reached it
    sorts last) and of the seconds a step and the peak."""
    return {
        "s_per_step": statistics.median(f["s_per_step"] for f in runs),
        "step": _median_reached([f["step"] for f in runs]),
        "seconds": _median_reached([f["seconds"] for f in runs]),
        "peak": statistics.median(f["peak"] for f in runs),
    }


def row(name: str, f: dict) -> str:
    seconds = f"{f['seconds']:.0f}" if f["seconds"] else "-"
    return f"{name:14} {f['s_per_step']:7.2f} {f['step'] or '-':>5} {seconds:>8} {f['peak']:6.3f}"


def main(args: Args) -> None:
    if args.trl_worker:
        trl_worker(args, Path(args.trl_worker))
        return
    runs = {"orz-rl": run_orz, "trl": run_trl}
    figures: dict[str, list[dict]] = {name: [] for name in runs if args.only in ("", name)}
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        for index, seed in enumerate(args.seeds):
            # Alternate which side runs first, so that a machine whose speed drifts during the
            # bench (shared hosts do, by 20 % and more) does not favour one side.
            for name in list(figures)[:: 1 if index % 2 == 0 else -1]:
                start = time.perf_counter()
                figures[name].append(summary(runs[name](args, tmp, seed), args.target))
                print(f"{name} seed {seed}: {time.perf_counter() - start:.0f} s in all", flush=True)
    print(f"\n{args.steps} steps each, 10-step mean reward to {args.target} (cores: {os.cpu_count()})")
    print(f"{'':14} {'s/step':>7} {'step':>5} {'seconds':>8} {'peak':>6}")
    for name, per_seed in figures.items():
        for seed, f in zip(args.seeds, per_seed, strict=True):
            print(row(f"{name} seed {seed}", f))
    medians = {name: median_run(per_seed) for name, per_seed in figures.items()}
    for name, f in medians.items():
        print(row(f"{name} median", f))
    if len(medians) == 2:
        orz, trl = medians["orz-rl"], medians["trl"]
        ratio = orz["s_per_step"] / trl["s_per_step"]
        print(f"\norz-rl / TRL (medians): {ratio:.2f}x seconds a step", end="")
        if orz["seconds"] and trl["seconds"]:
            print(f", {orz['seconds'] / trl['seconds']:.2f}x seconds to {args.target}", end="")
        print()


if __name__ == "__main__":
    main(tyro.cli(Args))
