"""Checks of a whole run configuration, made before any model loads and reported together.

A run that cannot work (a missing file, more critic steps than responses, prompts
longer than their limit, a response budget past the model's positions) should say
so in one message that names every offending field, not fail one field at a time,
minutes into loading weights. Only cheap reads happen here: files' existence, the
model's ``config.json`` and its tokenizer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from orz_rl.advantages.registry import get_estimator
from orz_rl.config import TrainConfig, bound_problems, raise_if_any, resumable_fields
from orz_rl.envs.registry import UnknownTaskError, get_task
from orz_rl.envs.task import Task
from orz_rl.models.loading import ModelFileError, ModelNotFoundError, check_model_path, load_tokenizer
from orz_rl.models.tiny import build as build_tiny_model
from orz_rl.models.tiny import tiny_config_for
from orz_rl.problems.benchmarks import resolve_benchmarks
from orz_rl.runtime.atomic_write import folder_problem
from orz_rl.runtime.checkpoint import check_checkpoint, checkpoint_dirs, latest_checkpoint
from orz_rl.runtime.run_log import jsonable
from orz_rl.runtime.trackers import flatten, tracker_problems


def length_problems(
    cfg: TrainConfig, prompts: Sequence[str], sources: Sequence[str], tokenizer, max_positions: int | None
) -> list[str]:
    """The longest rendered prompt fits ``max_prompt_tokens``; prompt plus response fit the model.

    ``sources[i]`` names where ``prompts[i]`` comes from (``file: item N``).
    """
    r = cfg.rollout
    problems = []
    if max_positions is not None and r.seq_len > max_positions:
        response = "rollout.max_new_tokens"
        if r.response_tokens != r.max_new_tokens:  # with a tool: every turn and tool output
            response = "rollout.tool.max_total_tokens"
        problems.append(
            f"rollout.max_prompt_tokens + {response} = {r.max_prompt_tokens} + "
            f"{r.response_tokens} exceeds the model's {max_positions} positions ({cfg.model.path})"
        )
    if prompts:
        lengths = [len(ids) for ids in tokenizer(list(prompts))["input_ids"]]
        longest = max(range(len(lengths)), key=lengths.__getitem__)
        if lengths[longest] > r.max_prompt_tokens:
            problems.append(
                f"{sources[longest]} renders to a {lengths[longest]}-token prompt, "
                f"over rollout.max_prompt_tokens = {r.max_prompt_tokens}"
            )
    return problems


def config_problems(cfg: TrainConfig) -> tuple[Task | None, list[str]]:
    """The run's task, and what is wrong with ``cfg`` that needs no data and no model: its
    settings (:func:`settings_problems`), the task's files and fields, benchmarks, the model's path."""
    try:
        task = get_task(cfg.task)
    except UnknownTaskError as e:
        task = None
        problems = [f"task: {e}"]
    else:
        problems = []
    problems += settings_problems(cfg)
    if task is not None:
        problems += task.check(cfg)
    # A path the tiny model would be built at is checked once it exists (a file, a damaged build).
    if not cfg.model.build_tiny_if_missing or Path(cfg.model.path).exists():
        try:
            # the loaders' own rule for a local path vs a hub name
            check_model_path(cfg.model.path, "model.path")
        except (ModelNotFoundError, ModelFileError) as e:
            problems.append(str(e))
    problems += run_dir_problems(cfg)
    if cfg.eval.interval > 0:
        try:
            resolve_benchmarks(cfg.eval.benchmarks)
        except (FileNotFoundError, ValueError) as e:
            problems.append(f"eval.benchmarks: {e}")
    return task, problems


def settings_problems(cfg: TrainConfig) -> list[str]:
    """What is wrong with ``cfg``'s settings alone, reading no file (``--dry-run`` asks too): every
    field against its ``Bound``, counts that do not divide, an estimator's needs, trackers."""
    r, p = cfg.rollout, cfg.ppo
    problems = bound_problems(cfg)  # every field against its Bound (orz_rl/config.py)
    if cfg.fresh and cfg.resume is not None:
        problems.append("fresh and resume: a run either starts over or continues, not both")
    n = r.prompts_per_step * r.samples_per_prompt
    for field, steps in (("critic", p.critic_steps_per_rollout), ("policy", p.policy_steps_per_rollout)):
        if 0 < n < steps:
            problems.append(
                f"rollout.prompts_per_step x rollout.samples_per_prompt = {n} responses cannot be split into "
                f"ppo.{field}_steps_per_rollout = {steps} {field} mini-batches (one response at least each)"
            )
    return problems + shaping_problems(cfg) + estimator_problems(cfg) + tracker_problems(cfg.log)


def shaping_problems(cfg: TrainConfig) -> list[str]:
    """Off-policy knobs against what they need: the lengths and groups DAPO's act on, the
    importance weight bounded staleness trains with."""
    r, buffer, out = cfg.rollout, cfg.reward.overlong_penalty, []
    if buffer > r.response_tokens:
        limit = "rollout.tool.max_total_tokens" if r.tools != "none" else "rollout.max_new_tokens"
        out.append(
            f"reward.overlong_penalty = {buffer} tokens is longer than the response limit it counts back "
            f"from ({limit} = {r.response_tokens})"
        )
    if r.max_staleness > 0 and r.tis_cap == 0:
        out.append(
            f"rollout.max_staleness = {r.max_staleness} trains on responses of older policies: set "
            "rollout.tis_cap (2, say) so that each token is weighted by its behaviour log-prob"
        )
    if r.max_staleness > 0 and cfg.ppo.overlap_critic_update:
        out.append(
            "ppo.overlap_critic_update and rollout.max_staleness: rollouts ahead already sample "
            "during the whole step; choose one"
        )
    if r.dynamic_sampling and r.samples_per_prompt < 2:
        out.append(
            "rollout.dynamic_sampling drops groups whose rewards are all equal: with "
            f"rollout.samples_per_prompt = {r.samples_per_prompt} every group would be dropped (2 at least)"
        )
    return out


def run_dir_problems(cfg: TrainConfig) -> list[str]:
    """The run's folder (``resume``'s where set, which the run continues in) can be a directory."""
    field, path = ("resume", cfg.resume) if cfg.resume is not None else ("run_dir", cfg.run_dir)
    problem = folder_problem(field, path, "a run's folder")
    return [] if problem is None else [problem]


def estimator_problems(cfg: TrainConfig) -> list[str]:
    """``ppo.advantage`` names a registered estimator, and the run gives it what it declares it
    needs (:meth:`orz_rl.advantages.estimator.AdvantageEstimator.problems`)."""
    try:
        estimator = get_estimator(cfg.ppo.advantage)
    except ValueError as e:
        return [f"ppo.advantage: {e}"]
    return estimator.problems(cfg)


def resume_problems(saved: dict, now: dict) -> list[str]:
    """The fields whose value differs from the checkpoint's run, except those marked
    :data:`~orz_rl.config.RESUMABLE` (:func:`~orz_rl.config.resumable_fields`).

    A field the checkpoint's orz-rl did not have yet counts as at its default, so a run resumes
    across versions that only add fields.
    """
    resumable = resumable_fields(TrainConfig)
    nested = tuple(name for name in resumable if name.endswith("."))
    before, after = flatten(saved), flatten(now)
    for field, value in flatten(jsonable(asdict(TrainConfig()))).items():
        before.setdefault(field, value)
    return [
        f"{field} = {after.get(field)!r} differs from the checkpoint's run ({before.get(field)!r}); "
        "a resumed run keeps its settings (use a new run_dir for new ones)"
        for field in sorted(before.keys() | after.keys())
        if before.get(field) != after.get(field) and field not in resumable and not field.startswith(nested)
    ]


def model_positions(model_path: str) -> int | None:
    """``max_position_embeddings`` from the model's ``config.json``, without loading weights."""
    try:
        return json.loads((Path(model_path) / "config.json").read_text()).get("max_position_embeddings")
    except (OSError, ValueError):
        return None


def model_readable(path: str) -> bool:
    """Whether ``path`` is a local model directory whose files read (else: a hub name, loaded
    later, or a path :func:`config_problems` has reported)."""
    try:
        check_model_path(path)
    except (ModelNotFoundError, ModelFileError):
        return False
    return Path(path).is_dir()


def build_tiny_model_if_missing(cfg: TrainConfig) -> None:
    """Build the embedded tiny model the CPU recipes start from, where it is not built yet."""
    if cfg.model.build_tiny_if_missing and not Path(cfg.model.path).is_dir():
        print(f"orz-rl: building the embedded tiny model at {cfg.model.path} (about 30 s)")
        build_tiny_model(tiny_config_for(cfg.model))


def load_checked(cfg: TrainConfig) -> tuple[Task, list[Any], Any]:
    """The run's task, its problems and the tokenizer, once every problem of the configuration is
    reported at once (:class:`ConfigError`), before any model loads; with ``fresh``, the run that
    was in ``run_dir`` is then moved aside (:func:`move_run_aside`).

    Counts, files and fields are checked first, before the tiny model is built; then the prompt
    lengths, which need only the data and the tokenizer (``None`` for a hub name, loaded later).
    """
    task, found = config_problems(cfg)
    if not found:  # half a minute of work, for a configuration that can run
        build_tiny_model_if_missing(cfg)
    problems, tokenizer = [], None
    if task is not None:
        try:
            problems = task.load_problems(cfg.data)  # a malformed line is its own error (file and line)
        except FileNotFoundError:
            if not found:  # else the task's own check named the file already
                raise
    if problems and model_readable(cfg.model.path):
        tokenizer = load_tokenizer(cfg.model.path)
        if task.render is not None:
            prompts = [task.render(p, tokenizer.bos_token) for p in problems]
            sources = [getattr(p, "source", "") or f"problem {i + 1}" for i, p in enumerate(problems)]
            found += length_problems(cfg, prompts, sources, tokenizer, model_positions(cfg.model.path))
    raise_if_any(found)
    if cfg.fresh:  # the configuration runs: the old run aside, whole, before anything is written
        move_run_aside(cfg.run_dir)
    return task, problems, tokenizer


def check_ranks(cfg: TrainConfig, backend: str, world_size: int) -> None:
    """Under ``torchrun`` rollouts come from vLLM engines in Ray actors, or not at all."""
    if world_size > 1 and backend == "transformers":
        raise ValueError(
            "under torchrun, rollouts come from vLLM engines in Ray actors: the transformers "
            "backend would generate with a sharded actor on rank 0 alone"
        )
    if world_size > 1 and cfg.rollout.max_staleness > 0:
        raise ValueError(
            f"rollout.max_staleness = {cfg.rollout.max_staleness} samples on rank 0 while it trains: "
            "not under torchrun yet (each rank would have to wait for rank 0's rollouts ahead)"
        )
    if world_size > 1 and cfg.layout.vllm_engines < 1:
        raise ValueError(
            f"under torchrun ({world_size} ranks) vLLM cannot run inside a trainer process (it "
            "would join torch.distributed's world): pass --layout.vllm-engines N (N >= 1 engines "
            "in Ray actors)"
        )


def find_resume_checkpoint(cfg: TrainConfig) -> Path | None:
    """The checkpoint a run continues from: ``--resume``'s (which must have one), else run_dir's
    newest complete one when ``auto_resume`` (broken ones newer than it are reported and skipped).

    A run never starts over silently: checkpoints none of which loads, or a history
    (``metrics.jsonl``) without a checkpoint, are one :class:`RunHistoryError` listing them, which
    ``--fresh`` answers by moving the old run aside (:func:`move_run_aside`).
    """
    run_dir = cfg.resume if cfg.resume is not None else cfg.run_dir
    broken: list[tuple[Path, str | None]] = []  # each checkpoint checked once, newest first
    if cfg.resume is not None or cfg.auto_resume:
        found = latest_checkpoint(run_dir, skipped=broken)
        if found is not None:
            return found
    else:
        broken = [(d, check_checkpoint(d)) for d in checkpoint_dirs(run_dir)]
    steps = history_steps(run_dir)
    if not broken and not steps and cfg.resume is None:
        return None
    if broken:
        listed = "\n".join(f"  - {d}: {problem or 'complete, but --no-auto-resume'}" for d, problem in broken)
        what = f"{run_dir} holds {len(broken)} checkpoint(s) and none can be resumed from:\n{listed}"
    elif steps:
        what = f"{run_dir} holds a run's history ({steps} step(s) in metrics.jsonl) and no checkpoint"
    else:
        what = f"resume: {str(run_dir)!r} holds no checkpoint to resume from"
    raise RunHistoryError(
        f"{what}\nto start over there, pass --fresh (the old run is moved aside to "
        f"{run_dir}.old-TIME, nothing is deleted), or name another --run-dir"
    )


class RunHistoryError(ValueError):
    """A run directory whose history a new start would overwrite."""


def history_steps(run_dir: Path) -> int:
    """How many steps ``run_dir/metrics.jsonl`` records (0: none, or no such file)."""
    try:
        with (run_dir / "metrics.jsonl").open("rb") as lines:
            return sum(1 for line in lines if line.strip())
    except OSError:
        return 0


def move_run_aside(run_dir: Path) -> Path | None:
    """``--fresh``: move ``run_dir`` (if it holds anything) to ``RUN_DIR.old-YYYYmmdd-HHMMSS`` and
    return where it went; nothing is deleted."""
    if not run_dir.exists() or (run_dir.is_dir() and not any(run_dir.iterdir())):
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = run_dir.with_name(f"{run_dir.name}.old-{stamp}")
    n = 1
    while aside.exists():
        aside, n = run_dir.with_name(f"{run_dir.name}.old-{stamp}-{n}"), n + 1
    run_dir.rename(aside)
    print(f"orz-rl: --fresh: the run that was in {run_dir} is now in {aside}")
    return aside
