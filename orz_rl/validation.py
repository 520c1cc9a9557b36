"""Checks of a whole run configuration, made before any model loads and reported together.

A run that cannot work (a missing file, more critic steps than responses, prompts
longer than their limit, a response budget past the model's positions) should say
so in one message that names every offending field, not fail one field at a time,
minutes into loading weights. Only cheap reads happen here: files' existence, the
model's ``config.json`` and its tokenizer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from orz_rl.config import TrainConfig
from orz_rl.data import Problem
from orz_rl.modeling import ModelNotFoundError, check_model_path


class ConfigError(ValueError):
    """The configuration cannot run; the message lists every problem, one per line, by field."""


def _at_least(problems: list[str], field: str, value: int | float, low: int | float) -> None:
    if value < low:
        problems.append(f"{field} = {value}: must be at least {low}")


def length_problems(
    cfg: TrainConfig, prompts: Sequence[str], sources: Sequence[str], tokenizer, max_positions: int | None
) -> list[str]:
    """The longest rendered prompt fits ``max_prompt_tokens``; prompt plus response fit the model.

    ``sources[i]`` names where ``prompts[i]`` comes from (``file: item N``).
    """
    r = cfg.rollout
    problems = []
    if max_positions is not None and r.max_prompt_tokens + r.max_new_tokens > max_positions:
        problems.append(
            f"rollout.max_prompt_tokens + rollout.max_new_tokens = {r.max_prompt_tokens} + "
            f"{r.max_new_tokens} exceeds the model's {max_positions} positions ({cfg.model.path})"
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


def config_problems(cfg: TrainConfig) -> list[str]:
    """What is wrong with ``cfg`` that needs no data and no model: counts, files, benchmarks."""
    from orz_rl.evaluation import resolve_benchmark

    r, p = cfg.rollout, cfg.ppo
    problems: list[str] = []
    _at_least(problems, "rollout.prompts_per_step", r.prompts_per_step, 1)
    _at_least(problems, "rollout.samples_per_prompt", r.samples_per_prompt, 1)
    _at_least(problems, "rollout.max_new_tokens", r.max_new_tokens, 1)
    _at_least(problems, "ppo.micro_batch_size", p.micro_batch_size, 1)
    _at_least(problems, "ppo.pack_tokens", p.pack_tokens, -1)
    _at_least(problems, "layout.nodes", cfg.layout.nodes, 1)
    _at_least(problems, "layout.gpus_per_node", cfg.layout.gpus_per_node, 0)
    _at_least(problems, "layout.vllm_engines", cfg.layout.vllm_engines, 0)
    _at_least(problems, "layout.vllm_tensor_parallel", cfg.layout.vllm_tensor_parallel, 1)
    _at_least(problems, "ppo.policy_steps_per_rollout", p.policy_steps_per_rollout, 1)
    _at_least(problems, "ppo.critic_steps_per_rollout", p.critic_steps_per_rollout, 1)
    _at_least(problems, "keep_last", cfg.keep_last, 1)
    _at_least(problems, "save_interval", cfg.save_interval, 0)
    n = r.prompts_per_step * r.samples_per_prompt
    for field, steps in (("critic", p.critic_steps_per_rollout), ("policy", p.policy_steps_per_rollout)):
        if 0 < n < steps:
            problems.append(
                f"rollout.prompts_per_step x rollout.samples_per_prompt = {n} responses cannot be split into "
                f"ppo.{field}_steps_per_rollout = {steps} {field} mini-batches (one response at least each)"
            )
    if r.temperature <= 0:
        problems.append(f"rollout.temperature = {r.temperature}: must be above 0 (ORZ samples at 1.0)")
    if not cfg.data.generate_toy_task and not Path(cfg.data.train_file).is_file():
        problems.append(f"data.train_file {cfg.data.train_file!r} does not exist")
    if cfg.data.code_file and not cfg.data.generate_toy_code and not Path(cfg.data.code_file).is_file():
        problems.append(f"data.code_file {cfg.data.code_file!r} does not exist")
    if not cfg.model.build_tiny_if_missing:
        try:
            check_model_path(cfg.model.path)  # the loaders' own rule for a local path vs a hub name
        except ModelNotFoundError:
            problems.append(
                f"model.path {cfg.model.path!r} does not exist (expected a Hugging Face model directory)"
            )
    if cfg.data.code_file and cfg.sandbox.isolation == "none" and not cfg.sandbox.allow_unisolated:
        problems.append(
            "sandbox.isolation = 'none' runs untrusted code with network access; "
            "set sandbox.allow_unisolated to accept that"
        )
    if cfg.eval.interval > 0:
        for spec in cfg.eval.benchmarks:
            try:
                resolve_benchmark(spec)
            except (FileNotFoundError, ValueError) as e:
                problems.append(f"eval.benchmarks: {e}")
    return problems


#: Fields a resumed run may change: how long and how it runs, where it logs, how it evaluates,
#: where programs run. Any other difference would make the resumed run another experiment.
RESUMABLE_CHANGES = (
    "run_dir",
    "resume",
    "auto_resume",
    "max_steps",
    "max_minutes",
    "num_episodes",
    "progress",
    "dry_run",
    "save_interval",
    "keep_last",
    "threads",
    "eval.",
    "sandbox.",
    "reward.workers",
    "data.generate_toy_task",
    "data.generate_toy_code",
    "model.build_tiny_if_missing",
    "rollout.backend",
    "rollout.vllm_",
    "layout.",
)


def _flatten(config: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out |= _flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def resume_problems(saved: dict, now: dict) -> list[str]:
    """The fields whose value differs from the checkpoint's run, except :data:`RESUMABLE_CHANGES`."""
    before, after = _flatten(saved), _flatten(now)
    return [
        f"{field} = {after.get(field)!r} differs from the checkpoint's run ({before.get(field)!r}); "
        "a resumed run keeps its settings (use a new run_dir for new ones)"
        for field in sorted(before.keys() | after.keys())
        if before.get(field) != after.get(field) and not field.startswith(RESUMABLE_CHANGES)
    ]


def model_positions(model_path: str) -> int | None:
    """``max_position_embeddings`` from the model's ``config.json``, without loading weights."""
    try:
        return json.loads((Path(model_path) / "config.json").read_text()).get("max_position_embeddings")
    except (OSError, ValueError):
        return None


def prompt_sources(cfg: TrainConfig, problems: Sequence[Problem]) -> list[str]:
    """``file: item N`` for each problem (math first, then the code file's, as the trainer lists them)."""
    n_math = sum(p.tests is None for p in problems)
    return [
        f"{cfg.data.train_file}: item {i + 1}"
        if p.tests is None
        else f"{cfg.data.code_file}: item {i + 1 - n_math}"
        for i, p in enumerate(problems)
    ]


def raise_if_any(problems: list[str]) -> None:
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"the configuration cannot run ({len(problems)} problem(s)):\n{listed}")
