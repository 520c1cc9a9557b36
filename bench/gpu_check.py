"""The GPU check (issues 23 and 33): a few ORZ steps at Qwen2.5-0.5B's shape on one CUDA GPU.

Run on a lent GPU machine (``docs/gpu.md`` gives the one command and the wheels it carries), it
proves, each point a verdict that fails the check:

* CUDA is there and takes bfloat16;
* ``orz-rl train`` runs the 0.5B shape (random weights, ``orz_rl.models.real_shape``) with the
  transformers backend in bfloat16, ``--steps`` steps with a checkpoint after each, twice: with
  ``--ppo.activation-checkpointing`` and without it;
* the sampling is the actor's, with its context: the log-probs ``generate`` sampled with match
  the trainer's scoring of the same tokens (``rollout/logprob_abs_diff_mean``), and the first
  rollout is the same with activation checkpointing as without (it changes the training passes
  only);
* on CUDA each run's peak memory stays within ``--memory-tolerance`` times ``--dry-run``'s plan of
  the same command (the peak is ``torch.cuda.max_memory_allocated``, which the trainer logs as
  ``system/gpu_mem_peak_gib``; on a CPU peak and plan are reported, not judged);
* a resume is exact: the checkpointed run's next-to-last checkpoint, resumed in a run directory of
  its own, ends on the same actor parameters, after the same prompts, as the run itself.

Every run uses deterministic kernels (``torch.use_deterministic_algorithms(True, warn_only=True)``
and ``CUBLAS_WORKSPACE_CONFIG``), so the resume is held to exactly 0: the checkpoint restores the
weights, AdamW's moments, the schedules, the prompt sampler and every RNG, and the resumed step
then computes the same bits. Any difference is a gap in the resume or a kernel without a
deterministic version (the ones torch warned about are listed in the JSON).

    python bench/gpu_check.py                           # on a GPU machine: the 0.5B shape
    python bench/gpu_check.py --device cpu --tiny       # the suite's: the embedded tiny model

It prints one table and writes one JSON (``$OUT/gpu_check.json`` where ``OUT`` is set, else
``runs/gpu-check/gpu_check.json``) after every run, so a run cut short still leaves what it
measured; each run's output and ``metrics.jsonl`` go beside it. It exits 1 with one line per
failed verdict.
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

GIB = 2**30
#: Runs train with deterministic kernels: ``python -c`` this, then ``orz-rl``'s arguments.
DETERMINISTIC_LAUNCH = (
    "import sys, torch; torch.use_deterministic_algorithms(True, warn_only=True); "
    "from orz_rl.cli import main; main(sys.argv[1:])"
)
NONDETERMINISTIC_WARNING = "does not have a deterministic implementation"


@dataclass(frozen=True)
class GpuCheck:
    """Where to run, on which model, and how long."""

    device: Literal["cuda", "cpu"] = "cuda"
    """Where to train; ``cuda`` fails at once where CUDA is not available."""
    tiny: bool = False
    """Train the embedded tiny model (the suite's mode) instead of the 0.5B shape."""
    layers: int = 0
    """Decoder layers of the 0.5B shape (0: its 24; fewer keep its width and vocabulary)."""
    model: Path | None = None
    """A model directory to train instead of building one (the suite passes its tiny model)."""
    steps: int = 2
    """Steps of each run, a checkpoint after each; the resume continues from step ``steps - 1``."""
    prompts: int = 4
    """Prompts per step."""
    samples: int = 4
    """Responses per prompt (prompts x samples must be at least 12, ORZ's critic steps per rollout)."""
    new_tokens: int = 256
    """Response length limit; random weights run to it."""
    micro_batch: int = 4
    """``ppo.micro_batch_size``."""
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    """Parameter dtype (``model.dtype``); ``auto``: bfloat16 on CUDA, float32 on a CPU."""
    memory_tolerance: float = 1.25
    """On CUDA a run whose peak exceeds this many times the plan fails. On a CPU the peak is only
    reported: the resident memory also holds the interpreter and its libraries (about 0.8 GiB),
    which no plan counts, and at the 0.5B shape with 2 layers it came to 1.4 times the plan."""
    mismatch_tolerance: float = 0.1
    """A run fails where, at any step, the mean ``|log-prob|`` difference between the sampling
    and the trainer's scoring of the same tokens (``rollout/logprob_abs_diff_mean``) exceeds this
    many nats. With the transformers backend both are the actor itself, so only rounding differs:
    3e-7 on the CPU default in float32. A tenth of a nat leaves bfloat16's rounding room and
    catches sampling that lost its context (0.68 nats at the 0.5B shape, 2.4 on the tiny model)."""
    work: Path | None = None
    """Folder for the model and the runs (default: a temporary one, removed at the end).
    Checkpoints are removed once read either way: at the 0.5B shape in bfloat16 each is about
    5.5 GiB (actor, critic and their AdamW moments, by the parameter count)."""
    out: Path | None = None
    """The JSON (default: ``$OUT/gpu_check.json`` where ``OUT`` is set, else
    ``runs/gpu-check/gpu_check.json``); each run's log and ``metrics.jsonl`` go beside it."""


def default_out() -> Path:
    out = os.environ.get("OUT")
    return Path(out) / "gpu_check.json" if out else Path("runs/gpu-check/gpu_check.json")


# --- the machine ---------------------------------------------------------------------------------


def environment(cfg: GpuCheck) -> dict:
    """Versions, the device, and whether CUDA and bfloat16 are there."""
    import importlib
    from importlib.metadata import version

    import torch

    env = {"python": sys.version.split()[0], "torch_cuda": torch.version.cuda}
    for name in ("torch", "transformers", "torchrl", "tensordict", "tyro", "numpy"):
        env[name] = version(name)
    try:  # built against another torch it does not load; only prioritised replay buffers need it
        importlib.import_module("torchrl._torchrl")
        env["torchrl_extension"] = "loads"
    except ImportError as e:
        env["torchrl_extension"] = f"does not load: {str(e)[:160]}"
    env["cuda_available"] = torch.cuda.is_available()
    env["disk_free_gib"] = shutil.disk_usage(tempfile.gettempdir()).free / GIB
    if cfg.device == "cuda" and env["cuda_available"]:
        props = torch.cuda.get_device_properties(0)
        env |= {"gpu": props.name, "gpu_memory_gib": props.total_memory / GIB}
        env["bf16_supported"] = torch.cuda.is_bf16_supported()
    return env


# --- the runs ------------------------------------------------------------------------------------


def _dtype(cfg: GpuCheck) -> str:
    if cfg.dtype != "auto":
        return cfg.dtype
    return "bfloat16" if cfg.device == "cuda" else "float32"


def train_args(cfg: GpuCheck, env: dict, model: Path, run_dir: Path, checkpointing: bool) -> list[str]:
    """``orz-rl`` arguments of one run: the CPU default's recipe at this check's sizes, the
    transformers backend, a checkpoint each step, the two newest kept."""
    prompt_tokens = 256
    args = [
        "train", "cpu-default",
        "--model.path", str(model), "--model.no-build-tiny-if-missing", "--model.dtype", _dtype(cfg),
        "--data.train-file", str(run_dir.parent / "toy.json"),
        "--run-dir", str(run_dir), "--max-steps", str(cfg.steps), "--save-interval", "1", "--keep-last", "2",
        "--rollout.backend", "transformers",
        "--rollout.prompts-per-step", str(cfg.prompts), "--rollout.samples-per-prompt", str(cfg.samples),
        "--rollout.max-new-tokens", str(cfg.new_tokens), "--rollout.max-prompt-tokens", str(prompt_tokens),
        "--ppo.micro-batch-size", str(cfg.micro_batch),
        "--ppo.pack-tokens", str(prompt_tokens + cfg.new_tokens),
        "--ppo.activation-checkpointing" if checkpointing else "--ppo.no-activation-checkpointing",
        "--eval.interval", "0", "--no-progress",
    ]  # fmt: skip
    if cfg.device == "cuda":  # the plan's memory is then the training GPU's
        args += ["--layout.gpus-per-node", "1", "--layout.gpu-memory-gib", f"{env['gpu_memory_gib']:.1f}"]
    return args


def orz(args: list[str], log: Path, cwd: Path) -> tuple[int, float, list[str]]:
    """Run ``orz-rl ARGS`` with deterministic kernels in a process of its own in ``cwd``, its
    output shown and kept in ``log``; return its exit status, its seconds, and the operations
    torch warned have no deterministic version."""
    print("orz-rl", " ".join(args), flush=True)
    env = os.environ | {"CUBLAS_WORKSPACE_CONFIG": ":4096:8", "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    warned: list[str] = []
    # ``cwd`` is not the checkout: ``orz_rl`` is then the installed package (whose envs/ and
    # recipes/ install as orz_rl.envs and orz_rl.recipes), never the checkout's folder.
    cmd = [sys.executable, "-c", DETERMINISTIC_LAUNCH, *args]
    with log.open("w") as kept:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for line in proc.stdout:
            sys.stdout.write(line)
            kept.write(line)
            if NONDETERMINISTIC_WARNING in line:
                warned.append(
                    line.strip().split(NONDETERMINISTIC_WARNING)[0].split("UserWarning:")[-1].strip()
                )
    return proc.wait(), time.perf_counter() - start, sorted(set(warned))


def _metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def planned(args: list[str]) -> tuple[int, str, list[str]]:
    """The training process's (on CUDA: GPU's) total in ``--dry-run``'s plan of the same command,
    its name, and the plan's notes."""
    from orz_rl.cli import load_recipe
    from orz_rl.config import TrainConfig
    from orz_rl.tools.plan import plan

    cfg = tyro.cli(TrainConfig, default=load_recipe(args[1]), args=args[2:])
    run = plan(cfg)
    return run.memory[0].total, run.memory[0].device, list(run.notes)


def largest_difference(a: Path, b: Path) -> float:
    """The largest absolute difference of any parameter between two saved models."""
    from safetensors.torch import load_file

    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys(), "the two actors hold different parameters"
    return max(float((wa[k].double() - wb[k].double()).abs().max()) for k in wa)


def _prompts_of_step(run_dir: Path, step: int) -> list[int] | None:
    for line in (run_dir / "prompts.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["step"] == step:
            return row["prompt_ids"]
    return None


def first_rollout(run_dir: Path) -> dict:
    """Step 1's sampled responses as ``rollouts.jsonl`` keeps them (tokens and reward), with the
    step's mean length and reward: the same in every run of one seed and one model."""
    path, rows = run_dir / "rollouts.jsonl", _metrics(run_dir)
    kept = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    responses = [(r["tokens"], r["reward"]) for r in kept if r["step"] == 1]
    first = rows[0] if rows else {}
    return {
        "responses": responses,
        "length": first.get("response_length/mean"),
        "reward": first.get("reward/mean"),
    }


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def summary(cfg: GpuCheck, args: list[str], rows: list[dict], code: int, seconds: float) -> dict:
    """One training run: its exit, steps, timings, peak memory against the plan."""
    total, name, notes = planned(args)
    r = {"command": "orz-rl " + " ".join(args), "exit_code": code, "seconds": seconds, "steps": len(rows)}
    r |= {"planned_gib": total / GIB, "plan_of": name, "plan_notes": notes}
    if not rows:
        return r
    last = rows[-1]
    gpu = [row["system/gpu_mem_peak_gib"] for row in rows if "system/gpu_mem_peak_gib" in row]
    r["peak_rss_gib"] = max(row["system/peak_rss_gib"] for row in rows)
    r["gpu_peak_gib"] = max(gpu) if gpu else None
    # What the plan counts: on CUDA torch's allocations on the GPU, on a CPU the process's memory.
    r["peak_gib"] = r["gpu_peak_gib"] if cfg.device == "cuda" else r["peak_rss_gib"]
    r["peak_of"] = "torch.cuda.max_memory_allocated" if cfg.device == "cuda" else "peak resident memory"
    r["peak_over_plan"] = r["peak_gib"] / r["planned_gib"] if r["peak_gib"] is not None else None
    r["logprob_abs_diff_mean"] = max(row["rollout/logprob_abs_diff_mean"] for row in rows)
    r["logprob_abs_diff_max"] = max(row["rollout/logprob_abs_diff_max"] for row in rows)
    r["phase_seconds_last_step"] = {k[5:]: v for k, v in last.items() if k.startswith("time/")}
    r["generation_tokens_per_s"] = last.get("perf/gen_tokens_per_s")
    r["training_tokens_per_s"] = last.get("perf/train_tokens_per_s")
    r["response_length_mean"] = last.get("response_length/mean")
    return r


def verdicts(cfg: GpuCheck, result: dict) -> list[tuple[str, bool, str]]:
    """(check, passed, detail) for every verdict the result so far allows."""
    env, runs, out = result["environment"], result["runs"], []
    if cfg.device == "cuda":
        out.append(
            ("CUDA available", env["cuda_available"], env.get("gpu", "torch.cuda.is_available() is False"))
        )
        if env["cuda_available"] and _dtype(cfg) == "bfloat16":
            out.append(("bfloat16 on the GPU", env["bf16_supported"], "torch.cuda.is_bf16_supported()"))
    judge_memory = cfg.device == "cuda"
    for name in ("checkpointing", "no_checkpointing", "resume"):
        run = runs.get(name)
        if run is None:
            continue
        want = 1 if name == "resume" else cfg.steps
        ran = f"exit {run['exit_code']}, {run['steps']} of {want} step(s) logged"
        out.append((f"{name}: run completes", run["exit_code"] == 0 and run["steps"] >= want, ran))
        if "logprob_abs_diff_mean" in run:
            diff = run["logprob_abs_diff_mean"]
            detail = f"largest step mean {diff:.2g} nats (largest token {run['logprob_abs_diff_max']:.2g})"
            out.append(
                (f"{name}: sampling log-probs match the trainer's", diff <= cfg.mismatch_tolerance, detail)
            )
        if name != "resume" and run.get("peak_gib") is not None and judge_memory:
            ratio = run["peak_over_plan"]
            detail = f"{run['peak_gib']:.2f} GiB / {run['planned_gib']:.2f} GiB = {ratio:.2f}"
            out.append(
                (f"{name}: peak within {cfg.memory_tolerance}x plan", ratio <= cfg.memory_tolerance, detail)
            )
        elif name != "resume" and run["exit_code"] == 0 and run.get("peak_gib") is None:
            out.append((f"{name}: peak memory logged", False, "no system/gpu_mem_peak_gib in metrics.jsonl"))
    same = runs.get("no_checkpointing", {}).get("first_rollout_as_checkpointing")
    if same is not None:
        lengths = runs["no_checkpointing"]["first_rollout_length_reward"]
        detail = ", ".join(f"{k}: mean length {n:.2f}, reward {r:.3f}" for k, (n, r) in lengths.items())
        out.append(("activation checkpointing leaves step 1's rollout unchanged", same, detail))
    resume = runs.get("resume", {})
    if "largest_difference" in resume:
        diff = resume["largest_difference"]
        out.append(("resume: same actor parameters", diff == 0.0, f"largest difference {diff:.3g}"))
        out.append(("resume: same prompts", resume["same_prompts"], f"step {cfg.steps}'s prompt ids"))
    return out


def write(result: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")


def run(cfg: GpuCheck) -> dict:
    if cfg.prompts * cfg.samples < 12 or cfg.steps < 2:
        raise ValueError("--prompts x --samples must be at least 12 (critic steps) and --steps at least 2")
    out = (cfg.out or default_out()).resolve()
    env = environment(cfg)
    result: dict = {"config": {k: str(v) for k, v in asdict(cfg).items()}, "environment": env, "runs": {}}
    result["verdicts"] = verdicts(cfg, result)
    if not all(ok for _, ok, _ in result["verdicts"]):
        return finish(result, out)
    work = (cfg.work or Path(tempfile.mkdtemp(prefix="gpu-check-"))).resolve()
    try:
        model, result["model"] = prepare_model(cfg, work)
        write(result, out)
        train_runs(cfg, env, model, work, result, out)
    finally:
        if cfg.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return finish(result, out)


def prepare_model(cfg: GpuCheck, work: Path) -> tuple[Path, dict]:
    """The model to train (given, the tiny one, or the 0.5B shape built now) and what it is."""
    from orz_rl.models.dims import dims_from_config_json
    from orz_rl.tools.plan import actor_parameters

    start = time.perf_counter()
    if cfg.model is not None:
        model = cfg.model.resolve()
    elif cfg.tiny:  # where the CPU default builds it, when it is missing
        from orz_rl.models.tiny import TinyModelConfig, build

        model = Path("artifacts/tiny-qwen2").resolve()
        if not (model / "config.json").exists():
            build(TinyModelConfig(out=model))
    else:
        from orz_rl.models.real_shape import RealShapeConfig, build

        model = build(RealShapeConfig(layers=cfg.layers, out=work / "model")).resolve()
    about = {"path": str(model), "actor_parameters": actor_parameters(dims_from_config_json(model))}
    return model, about | {"seconds": time.perf_counter() - start}


def train_runs(cfg: GpuCheck, env: dict, model: Path, work: Path, result: dict, out: Path) -> None:
    """With activation checkpointing, its resume from step ``steps - 1``, then without it."""
    runs, rollouts = result["runs"], {}
    for name, checkpointing in (("checkpointing", True), ("no_checkpointing", False)):
        run_dir = work / name / "run"
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        args = train_args(cfg, env, model, run_dir, checkpointing)
        code, seconds, warned = orz(args, out.parent / f"{name}.log", run_dir.parent)
        rows = _metrics(run_dir)
        runs[name] = summary(cfg, args, rows, code, seconds) | {"nondeterministic_ops": warned}
        rollouts[name] = first_rollout(run_dir)
        ran = all(runs[k]["exit_code"] == 0 and runs[k]["steps"] for k in rollouts)
        if len(rollouts) == 2 and ran:  # activation checkpointing changes the training passes, not sampling
            on, off = rollouts.values()
            runs[name]["first_rollout_as_checkpointing"] = on == off
            runs[name]["first_rollout_length_reward"] = {
                k: (r["length"], r["reward"]) for k, r in rollouts.items()
            }
        if (run_dir / "metrics.jsonl").exists():
            shutil.copy(run_dir / "metrics.jsonl", out.parent / f"{name}.metrics.jsonl")
        checkpoints = run_dir / "checkpoints"
        if name == "checkpointing" and code == 0 and len(rows) == cfg.steps:
            runs[name]["checkpoint_gib"] = _size(checkpoints / "final") / GIB
            runs["resume"] = resume(cfg, args, run_dir, work / "resume" / "run", out)
        shutil.rmtree(checkpoints, ignore_errors=True)
        result["verdicts"] = verdicts(cfg, result)
        write(result, out)


def resume(cfg: GpuCheck, args: list[str], whole: Path, run_dir: Path, out: Path) -> dict:
    """Step ``steps - 1``'s checkpoint of ``whole``, moved into a run directory of its own and
    resumed to ``steps``; its final actor against ``whole``'s."""
    before = whole / "checkpoints" / f"step_{cfg.steps - 1}"
    last_step_change = largest_difference(before / "actor", whole / "checkpoints" / "final" / "actor")
    (run_dir / "checkpoints").mkdir(parents=True)
    before.rename(run_dir / "checkpoints" / before.name)
    shutil.rmtree(whole / "checkpoints" / f"step_{cfg.steps}", ignore_errors=True)  # disk: final is its copy
    args = [str(run_dir) if a == str(whole) else a for a in args]
    code, seconds, warned = orz(args, out.parent / "resume.log", run_dir.parent)
    r = {"command": "orz-rl " + " ".join(args), "exit_code": code, "seconds": seconds}
    r |= {"from_step": cfg.steps - 1, "steps": sum(row["step"] >= cfg.steps for row in _metrics(run_dir))}
    r |= {"nondeterministic_ops": warned, "last_step_largest_change": last_step_change}
    if code == 0:
        final = "checkpoints/final/actor"
        r["largest_difference"] = largest_difference(whole / final, run_dir / final)
        r["same_prompts"] = _prompts_of_step(whole, cfg.steps) == _prompts_of_step(run_dir, cfg.steps)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    return r


def finish(result: dict, out: Path) -> dict:
    result["ok"] = all(ok for _, ok, _ in result["verdicts"])
    write(result, out)
    print(table(result))
    print(f"wrote {out}")
    return result


def table(result: dict) -> str:
    env, runs = result["environment"], result["runs"]
    rows = [
        ("device", env.get("gpu", "cpu") + f" (torch {env['torch']}, CUDA {env['torch_cuda']})"),
        ("versions", f"python {env['python']}, transformers {env['transformers']}, torchrl {env['torchrl']}"),
    ]
    if "model" in result:
        m = result["model"]
        rows.append(
            ("actor parameters", f"{m['actor_parameters'] / 1e6:.1f} M ({m['seconds']:.0f} s to build)")
        )
    for name in ("checkpointing", "no_checkpointing"):
        r = runs.get(name)
        if r is None or r.get("peak_gib") is None:
            continue
        rows += [
            (f"{name}: run", f"{r['seconds']:.0f} s, {r['steps']} steps"),
            (f"{name}: peak ({r['peak_of']})", f"{r['peak_gib']:.2f} GiB"),
            (f"{name}: plan ({r['plan_of']})", f"{r['planned_gib']:.2f} GiB"),
            (f"{name}: peak / plan", f"{r['peak_over_plan']:.2f}"),
            (f"{name}: generation / training tokens/s", f"{r['generation_tokens_per_s']:.0f} / "
             f"{r['training_tokens_per_s']:.0f}"),
        ]  # fmt: skip
    if "largest_difference" in runs.get("resume", {}):
        r = runs["resume"]
        rows.append(("resume: largest actor difference", f"{r['largest_difference']:.3g}"))
        rows.append(("resume: the last step's largest change", f"{r['last_step_largest_change']:.3g}"))
    rows += [
        (f"verdict: {check}", ("ok" if ok else "FAILED") + f" ({detail})")
        for check, ok, detail in result["verdicts"]
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main() -> None:
    result = run(tyro.cli(GpuCheck))
    failed = [f"{check}: {detail}" for check, ok, detail in result["verdicts"] if not ok]
    for line in failed:
        print(f"gpu_check: FAILED: {line}", file=sys.stderr)
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
