"""The ORZ loop at a published model's real shape on this machine (issue 33).

Builds Qwen2.5-0.5B's architecture with random weights (``orz_rl.models.real_shape``: its width,
grouped-query attention, tied 151,936-row embedding; ``--layers`` keeps all of that and fewer
decoder layers) and trains it through ``orz-rl train`` twice in processes of their own:
``--steps`` steps at once, saving a checkpoint every step, then a resume of a copy of that run
cut back to its step ``--steps - 1`` checkpoint (as a run killed after that save is), to
``--steps``. Random weights rarely stop, so responses run to ``--new-tokens``. It prints one table
and writes one JSON:

* each phase's seconds and the generation and training tokens/s of the last step (``metrics.jsonl``);
* the trainer's peak resident memory (the vLLM engine runs in the same process) beside
  ``--dry-run``'s plan for the same configuration, and their ratio; and the plan's verdict for the
  full published shape in float32 and bfloat16 on this machine, beside it;
* a checkpoint's size, and the seconds to load it (actor, critic, trainer state) and to save it
  again (``save_checkpoint``);
* the resume verdict: the largest difference of any actor parameter between the uninterrupted run
  and the resumed one (0 when the resume is exact).

    python bench/real_shape.py --dtype bfloat16 --activation-checkpointing   # the full 0.5B shape
    python bench/real_shape.py --layers 2            # full width and vocabulary, 2 layers
    python bench/real_shape.py --layers 2 --new-tokens 16 --prompts 2 --samples 2 \
        --critic-steps 2 --backend transformers      # the test suite's (tests/bench)

Absolute seconds depend on the machine: quote them with the command that printed them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import tyro

from orz_rl.config import Backend

GIB = 2**30


@dataclass(frozen=True)
class RealShapeBench:
    """What to build and how to run it."""

    shape: str = "Qwen/Qwen2.5-0.5B"
    """The published shape (``orz_rl.models.dims.QWEN25``)."""
    layers: int = 0
    """Decoder layers (0: the shape's own; fewer keep the full width and vocabulary)."""
    prompts: int = 4
    """Prompts per step."""
    samples: int = 4
    """Responses per prompt (prompts x samples must be at least ``critic_steps``)."""
    critic_steps: int = 12
    """``ppo.critic_steps_per_rollout``: ORZ's 12; fewer let fewer responses make a step."""
    new_tokens: int = 512
    """Response length limit; random weights run to it."""
    steps: int = 2
    """Steps of the uninterrupted run; the interrupted one stops one earlier and resumes."""
    micro_batch: int = 2
    """``ppo.micro_batch_size``."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    """Parameter dtype (``model.dtype``; AdamW's state follows it): the CPU recipes' float32, or
    bfloat16 as the GPU recipes."""
    activation_checkpointing: bool = False
    """``ppo.activation_checkpointing``, as the 7B and 32B recipes train."""
    backend: Backend = "auto"
    """``rollout.backend``: the recipe's (vLLM where it imports), or transformers' ``generate``."""
    work: Path | None = None
    """Folder for the model and the runs (default: a temporary one, removed at the end)."""
    out: Path = Path("runs/bench-real-shape/real_shape.json")
    """Where the JSON goes."""


def _train_args(cfg: RealShapeBench, model: Path, run_dir: Path, steps: int) -> list[str]:
    prompt_tokens = 256
    return [
        "train", "cpu-default",
        "--model.path", str(model), "--model.no-build-tiny-if-missing", "--model.dtype", cfg.dtype,
        "--data.train-file", str(model.parent / "toy.json"),
        "--run-dir", str(run_dir), "--max-steps", str(steps), "--save-interval", "1",
        "--rollout.prompts-per-step", str(cfg.prompts), "--rollout.samples-per-prompt", str(cfg.samples),
        "--rollout.max-new-tokens", str(cfg.new_tokens), "--rollout.max-prompt-tokens", str(prompt_tokens),
        "--ppo.micro-batch-size", str(cfg.micro_batch),
        "--ppo.critic-steps-per-rollout", str(cfg.critic_steps),
        "--ppo.pack-tokens", str(prompt_tokens + cfg.new_tokens),
        "--eval.interval", "0", "--no-progress", "--rollout.backend", cfg.backend,
        *(["--ppo.activation-checkpointing"] if cfg.activation_checkpointing else []),
    ]  # fmt: skip


def _orz(args: list[str]) -> float:
    """Run ``orz-rl ARGS``; return its seconds."""
    start = time.perf_counter()
    print("orz-rl", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "orz_rl.cli", *args], check=True)
    return time.perf_counter() - start


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _plan(args: list[str]):
    """``--dry-run``'s plan of the same command: the training process's memory, and its verdict."""
    from orz_rl.cli import load_recipe
    from orz_rl.config import TrainConfig
    from orz_rl.tools.plan import plan

    cfg = tyro.cli(TrainConfig, default=load_recipe(args[1]), args=args[2:])
    [training, *_] = plan(cfg).memory
    return training


def _full_shape_plans(cfg: RealShapeBench, args: list[str]) -> dict[str, dict]:
    """The plan of the same run at the full published shape, in each dtype the recipes use."""
    out = {}
    for dtype in ("float32", "bfloat16"):
        full = [*args, "--model.path", cfg.shape, "--model.dtype", dtype]
        training = _plan(full)
        out[dtype] = {
            "planned_gib": training.total / GIB,
            "fits": training.fits,
            "of_gib": _gib(training.capacity),
        }
    return out


def _gib(n: int | None) -> float | None:
    return None if n is None else n / GIB


def _resumable_copy(run_dir: Path, copy: Path, checkpoint: str) -> None:
    """``run_dir`` as a run killed just after saving ``checkpoint`` leaves it: its files copied, the
    checkpoints after it left out (the rest hard-linked: a save never writes in place)."""
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("checkpoints"))
    source = run_dir / "checkpoints" / checkpoint
    shutil.copytree(source, copy / "checkpoints" / source.name, copy_function=os.link)


def _keep_only(run_dir: Path, *kept: str) -> None:
    """Remove ``run_dir``'s checkpoints but ``kept`` (paths under ``checkpoints/``): at full width
    each checkpoint is 3.8 GiB, and four kept at once filled a CI runner's disk."""
    checkpoints, hold = run_dir / "checkpoints", run_dir / "kept"
    for path in kept:
        (hold / path).parent.mkdir(parents=True, exist_ok=True)
        (checkpoints / path).rename(hold / path)
    shutil.rmtree(checkpoints)
    hold.rename(checkpoints)


def _checkpoint_seconds(checkpoint: Path, scratch: Path) -> tuple[float, float]:
    """Seconds to load ``checkpoint`` (actor, critic, trainer state) and to save it again."""
    from orz_rl.models.loading import load_causal_lm, load_tokenizer
    from orz_rl.ppo.critic import Critic
    from orz_rl.runtime.checkpoint import load_state, save_checkpoint

    start = time.perf_counter()
    actor = load_causal_lm(str(checkpoint / "actor"))
    critic = Critic.from_pretrained(checkpoint / "critic")
    state = load_state(checkpoint)
    loaded = time.perf_counter() - start
    tokenizer = load_tokenizer(str(checkpoint / "actor"))
    start = time.perf_counter()
    save_checkpoint(scratch / "checkpoints" / "again", tokenizer, state, {"actor": actor, "critic": critic})
    saved = time.perf_counter() - start
    shutil.rmtree(scratch)
    return loaded, saved


def _largest_difference(a: Path, b: Path) -> float:
    from safetensors.torch import load_file

    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys(), "the two actors hold different parameters"
    return max(float((wa[k].double() - wb[k].double()).abs().max()) for k in wa)


def run(cfg: RealShapeBench) -> dict:
    from orz_rl.models.dims import dims_from_config_json
    from orz_rl.models.real_shape import RealShapeConfig, build
    from orz_rl.tools.plan import actor_parameters

    if cfg.prompts * cfg.samples < cfg.critic_steps or cfg.steps < 2:
        raise ValueError("--prompts x --samples must be at least --critic-steps, and --steps at least 2")
    work = cfg.work or Path(tempfile.mkdtemp(prefix="real-shape-"))
    try:
        start = time.perf_counter()
        model = build(RealShapeConfig(shape=cfg.shape, layers=cfg.layers, out=work / "model"))
        built = time.perf_counter() - start
        whole, resumed = work / "whole" / "run", work / "resumed" / "run"
        args = _train_args(cfg, model, whole, cfg.steps)
        seconds = {"build": built, "whole run": _orz(args)}
        cut = f"step_{cfg.steps - 1}"
        _resumable_copy(whole, resumed, cut)
        _keep_only(whole, cut, "final/actor")
        checkpoint = whole / "checkpoints" / cut
        size = sum(p.stat().st_size for p in checkpoint.rglob("*") if p.is_file())
        load_s, save_s = _checkpoint_seconds(checkpoint, work / "scratch")
        seconds["resumed run"] = _orz(_train_args(cfg, model, resumed, cfg.steps))
        _keep_only(resumed, "final/actor")
        rows = _metrics(whole)
        last = rows[-1]
        peak = max(r["system/peak_rss_gib"] for r in rows) * GIB
        training = _plan(args)
        planned = training.total
        result = {
            "config": {k: str(v) for k, v in asdict(cfg).items()},
            "command": "orz-rl " + " ".join(args),
            "actor_parameters": actor_parameters(dims_from_config_json(model)),
            "phase_seconds_last_step": {k[5:]: v for k, v in last.items() if k.startswith("time/")},
            "generation_tokens_per_s": last["perf/gen_tokens_per_s"],
            "training_tokens_per_s": last["perf/train_tokens_per_s"],
            "response_length_mean": last["response_length/mean"],
            "peak_rss_gib": peak / GIB,
            "planned_gib": planned / GIB,
            "peak_over_plan": peak / planned,
            "plan_fits": training.fits,
            "host_memory_gib": _gib(training.capacity),
            "dtype": cfg.dtype,
            "activation_checkpointing": cfg.activation_checkpointing,
            "full_shape_plans": _full_shape_plans(cfg, args),
            "checkpoint_gib": size / GIB,
            "checkpoint_load_s": load_s,
            "checkpoint_save_s": save_s,
            "weight_sync_s": last.get("time/weight_sync"),
            "resume_largest_difference": _largest_difference(
                whole / "checkpoints" / "final" / "actor", resumed / "checkpoints" / "final" / "actor"
            ),
            "seconds": seconds,
        }
    finally:
        if cfg.work is None:
            shutil.rmtree(work, ignore_errors=True)
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    cfg.out.write_text(json.dumps(result, indent=1) + "\n")
    print(table(result))
    print(f"wrote {cfg.out}")
    return result


def table(r: dict) -> str:
    rows = [
        ("actor parameters", f"{r['actor_parameters'] / 1e6:.0f} M"),
        ("parameter dtype (AdamW state the same)", r["dtype"]),
        ("activation checkpointing", "on" if r["activation_checkpointing"] else "off"),
        ("peak resident memory (trainer + in-process engine)", f"{r['peak_rss_gib']:.2f} GiB"),
        ("--dry-run's plan for the training process", f"{r['planned_gib']:.2f} GiB"),
        ("peak / plan", f"{r['peak_over_plan']:.2f}"),
        *(
            (
                f"plan at the full shape, {dtype}",
                f"{p['planned_gib']:.2f} GiB: "
                f"{'fits' if p['fits'] else 'does NOT fit'} {p['of_gib'] or float('nan'):.1f} GiB",
            )
            for dtype, p in r["full_shape_plans"].items()
        ),  # fmt: skip
        ("generation tokens/s (last step)", f"{r['generation_tokens_per_s']:.0f}"),
        ("training tokens/s (last step)", f"{r['training_tokens_per_s']:.0f}"),
        ("mean response length", f"{r['response_length_mean']:.0f}"),
        ("checkpoint size", f"{r['checkpoint_gib']:.2f} GiB"),
        ("checkpoint load / save", f"{r['checkpoint_load_s']:.1f} s / {r['checkpoint_save_s']:.1f} s"),
        ("weight sync", f"{r['weight_sync_s']:.2f} s"),
        ("resume: largest actor parameter difference", f"{r['resume_largest_difference']:.3g}"),
        *((f"phase {k} (last step)", f"{v:.2f} s") for k, v in r["phase_seconds_last_step"].items()),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


if __name__ == "__main__":
    run(tyro.cli(RealShapeBench))
