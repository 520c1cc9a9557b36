"""The ORZ loop at a published model's real shape on this machine (issue 33).

Builds Qwen2.5-0.5B's architecture with random weights (``orz_rl.models.real_shape``: its width,
grouped-query attention, tied 151,936-row embedding; ``--layers`` keeps all of that and fewer
decoder layers) and trains it through ``orz-rl train`` three times in processes of their own:
``--steps`` steps at once, then ``--steps - 1`` and a resume to ``--steps``. Random weights rarely
stop, so responses run to ``--new-tokens``. It prints one table and writes one JSON:

* each phase's seconds and the generation and training tokens/s of the last step (``metrics.jsonl``);
* the trainer's peak resident memory (the vLLM engine runs in the same process) beside
  ``--dry-run``'s plan for the same configuration, and their ratio;
* a checkpoint's size, and the seconds to load it (actor, critic, trainer state) and to save it
  again (``save_checkpoint``);
* the resume verdict: the largest difference of any actor parameter between the uninterrupted run
  and the resumed one (0 when the resume is exact).

    python bench/real_shape.py                       # 24 layers: the full 0.5B shape
    python bench/real_shape.py --layers 2            # full width and vocabulary, 2 layers
    python bench/real_shape.py --layers 2 --new-tokens 32 --prompts 4 --samples 3   # the test's

Absolute seconds depend on the machine: quote them with the command that printed them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import tyro

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
    """Responses per prompt (prompts x samples must be at least 12, ORZ's critic steps per rollout)."""
    new_tokens: int = 512
    """Response length limit; random weights run to it."""
    steps: int = 2
    """Steps of the uninterrupted run; the interrupted one stops one earlier and resumes."""
    micro_batch: int = 2
    """``ppo.micro_batch_size``."""
    dtype: str = "float32"
    """Parameter dtype (``model.dtype``): the CPU recipes' float32, or bfloat16 as the GPU recipes."""
    work: Path | None = None
    """Folder for the model and the runs (default: a temporary one, removed at the end)."""
    out: Path = Path("runs/bench-real-shape/real_shape.json")
    """Where the JSON goes."""


def _train_args(cfg: RealShapeBench, model: Path, run_dir: Path, steps: int) -> list[str]:
    prompt_tokens = 256
    return [
        "train", "cpu-default",
        "--model.path", str(model), "--model.no-build-tiny-if-missing", "--model.dtype", cfg.dtype,
        "--data.train-file", str(run_dir.parent / "toy.json"),
        "--run-dir", str(run_dir), "--max-steps", str(steps), "--save-interval", "1",
        "--rollout.prompts-per-step", str(cfg.prompts), "--rollout.samples-per-prompt", str(cfg.samples),
        "--rollout.max-new-tokens", str(cfg.new_tokens), "--rollout.max-prompt-tokens", str(prompt_tokens),
        "--ppo.micro-batch-size", str(cfg.micro_batch),
        "--ppo.pack-tokens", str(prompt_tokens + cfg.new_tokens),
        "--eval.interval", "0", "--no-progress",
    ]  # fmt: skip


def _orz(args: list[str]) -> float:
    """Run ``orz-rl ARGS``; return its seconds."""
    start = time.perf_counter()
    print("orz-rl", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "orz_rl.cli", *args], check=True)
    return time.perf_counter() - start


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _planned_bytes(args: list[str]) -> int:
    """The training process's total in ``--dry-run``'s plan of the same command."""
    from orz_rl.cli import load_recipe
    from orz_rl.config import TrainConfig
    from orz_rl.tools.plan import plan

    cfg = tyro.cli(TrainConfig, default=load_recipe(args[1]), args=args[2:])
    [training, *_] = plan(cfg).memory
    return training.total


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
    return loaded, time.perf_counter() - start


def _largest_difference(a: Path, b: Path) -> float:
    from safetensors.torch import load_file

    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys(), "the two actors hold different parameters"
    return max(float((wa[k].double() - wb[k].double()).abs().max()) for k in wa)


def run(cfg: RealShapeBench) -> dict:
    from orz_rl.models.dims import dims_from_config_json
    from orz_rl.models.real_shape import RealShapeConfig, build
    from orz_rl.tools.plan import actor_parameters

    if cfg.prompts * cfg.samples < 12 or cfg.steps < 2:
        raise ValueError("--prompts x --samples must be at least 12 (critic steps) and --steps at least 2")
    work = cfg.work or Path(tempfile.mkdtemp(prefix="real-shape-"))
    try:
        start = time.perf_counter()
        model = build(RealShapeConfig(shape=cfg.shape, layers=cfg.layers, out=work / "model"))
        built = time.perf_counter() - start
        whole, cut = work / "whole" / "run", work / "cut" / "run"
        args = _train_args(cfg, model, whole, cfg.steps)
        seconds = {"build": built, "whole run": _orz(args)}
        seconds["cut run"] = _orz(_train_args(cfg, model, cut, cfg.steps - 1))
        seconds["resumed run"] = _orz(_train_args(cfg, model, cut, cfg.steps))
        rows = _metrics(whole)
        last = rows[-1]
        checkpoint = whole / "checkpoints" / "step_1"
        size = sum(p.stat().st_size for p in checkpoint.rglob("*") if p.is_file())
        load_s, save_s = _checkpoint_seconds(checkpoint, work / "scratch")
        peak = max(r["system/peak_rss_gib"] for r in rows) * GIB
        planned = _planned_bytes(args)
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
            "checkpoint_gib": size / GIB,
            "checkpoint_load_s": load_s,
            "checkpoint_save_s": save_s,
            "weight_sync_s": last.get("time/weight_sync"),
            "resume_largest_difference": _largest_difference(
                whole / "checkpoints" / "final" / "actor", cut / "checkpoints" / "final" / "actor"
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
        ("peak resident memory (trainer + in-process engine)", f"{r['peak_rss_gib']:.2f} GiB"),
        ("--dry-run's plan for the training process", f"{r['planned_gib']:.2f} GiB"),
        ("peak / plan", f"{r['peak_over_plan']:.2f}"),
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
