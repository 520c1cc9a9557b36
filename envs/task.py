"""A task: the env that rewards it, the loader of its problems, its prompt renderer, its metrics.

The trainer, the preflight and ``orz-rl eval`` know a task by name only (``--task``; the
registry is :mod:`orz_rl.envs.registry`). A task of one's own is a :class:`Task` in one's
own package, named as ``package.module:NAME`` or registered under the entry-point group
``orz_rl.tasks``. Its env is a :class:`~orz_rl.envs.rule_reward.RuleRewardEnv` subclass or any
single-turn TorchRL env keeping the collector's contract (:mod:`orz_rl.rollout.collector`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torchrl.envs import EnvBase

from orz_rl.config import DataConfig, TrainConfig
from orz_rl.problems import formats
from orz_rl.problems.toy_task import write_orz_train_file
from orz_rl.rewards.services import RewardServices


@dataclass(frozen=True)
class EnvArgs:
    """What a task's env is built with: by the trainer once, by ``orz-rl eval`` per batch of questions."""

    prompts_per_step: int
    """Distinct prompts drawn at each reset."""
    samples_per_prompt: int
    """Responses per prompt; a prompt's samples are adjacent."""
    seed: int = 0
    """Seed of the prompt order."""
    bos: str | None = None
    """The tokenizer's BOS text (ORZ's template starts with it), or None."""
    eos: str | None = None
    """The tokenizer's EOS text: a response ending on it has stopped."""
    services: RewardServices = field(default_factory=RewardServices)
    """The run's shared reward workers (math grader, code sandbox), started on first use."""

    def rule_reward_kwargs(self) -> dict[str, Any]:
        """The keywords of :class:`~orz_rl.envs.rule_reward.RuleRewardEnv` (all but the problems)."""
        return {
            "prompts_per_step": self.prompts_per_step,
            "samples_per_prompt": self.samples_per_prompt,
            "seed": self.seed,
            "bos": self.bos,
            "eos": self.eos,
        }


def score_stats(env: EnvBase) -> dict[str, float]:
    """The step metrics of a :class:`~orz_rl.envs.rule_reward.RuleRewardEnv`: what its last
    :meth:`score` counted (``last_score_stats``); none for an env that counts nothing."""
    return {k: float(v) for k, v in getattr(env, "last_score_stats", {}).items()}


def load_train_file(data: DataConfig) -> list[Any]:
    """The problems of ``data.train_file`` (ORZ's training or evaluation format); with
    ``data.generate_toy_task`` (the CPU recipes), the addition task is written there first. The
    task that reads the file writes it: a task that loads its problems otherwise writes nothing."""
    if data.generate_toy_task:
        write_orz_train_file(
            data.train_file, seed=data.seed, max_operand=data.toy_max_operand, task=data.toy_task
        )
    return formats.load_problems(data.train_file)


def train_file_problems(cfg: TrainConfig) -> list[str]:
    """``data.train_file`` exists, or the recipe generates it."""
    if Path(cfg.data.train_file).is_dir():
        return [f"data.train_file {str(cfg.data.train_file)!r} is a folder, not a data file"]
    if not cfg.data.generate_toy_task and not Path(cfg.data.train_file).is_file():
        return [f"data.train_file {cfg.data.train_file!r} does not exist"]
    return []


def check_train_file(cfg: TrainConfig) -> list[str]:
    """``data.train_file`` exists (or is generated), and no ``data.code_file`` is given for nothing."""
    found = train_file_problems(cfg)
    if cfg.data.code_file:
        found.append(
            f"data.code_file {cfg.data.code_file!r} is not read by task {cfg.task!r} "
            "(--task mixed trains on math and code problems)"
        )
    return found


@dataclass(frozen=True)
class Task:
    """Everything orz-rl needs to train and evaluate on one kind of problem.

    Only ``name``, ``summary`` and ``make_env`` have no default; the defaults read ORZ's
    file formats from ``data.train_file``.
    """

    name: str
    """The name ``--task`` takes."""
    summary: str
    """One line for ``orz-rl tasks``."""
    make_env: Callable[[Sequence[Any], EnvArgs], EnvBase]
    """The env over these problems, with a batch of ``prompts_per_step x samples_per_prompt``."""
    load_problems: Callable[[DataConfig], list[Any]] = load_train_file
    """The training problems of a run's data configuration (each with ``question``, ``answer``,
    and where it was read as ``source`` if it has one)."""
    load_benchmark: Callable[[Path], list[Any]] = formats.load_problems
    """The problems of one evaluation file (``orz-rl eval --benchmarks``)."""
    render: Callable[[Any, str | None], str] | None = None
    """The prompt of a problem given the tokenizer's BOS text, as the env renders it: the
    preflight checks every prompt's length with it (None: no check)."""
    metrics: Callable[[EnvBase], dict[str, float]] = score_stats
    """The env's figures for the step's metrics, read after each rollout."""
    check: Callable[[TrainConfig], list[str]] = check_train_file
    """What is wrong with a run's configuration for this task (files, fields), before anything loads."""
    extract_answer: Callable[[str], str | None] | None = None
    """What a response answered, for evaluation records (None: not recorded)."""
    majority_vote: bool = True
    """Whether evaluation reports maj@k over the extracted answers (a vote over programs' texts
    means nothing: the code task says no)."""
