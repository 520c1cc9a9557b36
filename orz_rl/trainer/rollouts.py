"""Rank 0's part of a run: the task's env and its reward services, generation (engine and policy),
the collector, the run log and the evaluation sets. Under ``torchrun`` the other ranks have none of
it: they receive each step's batch (:meth:`orz_rl.trainer.Trainer.collect`)."""

from __future__ import annotations

from dataclasses import asdict
from functools import partial
from typing import Any

from tensordict import TensorDict

from orz_rl.config import EngineBackend, TrainConfig
from orz_rl.envs.python_tool import with_python_tool
from orz_rl.envs.registry import BUILTIN
from orz_rl.envs.task import EnvArgs, Task
from orz_rl.ppo.packing import pad_share_metrics
from orz_rl.rewards.services import RewardServices
from orz_rl.rollout.ahead import RolloutAhead, sample_rollout
from orz_rl.rollout.collector import SingleTurnCollector, make_collector
from orz_rl.rollout.dynamic_sampling import sample_differing_groups
from orz_rl.rollout.generation import describe_generation, start_generation
from orz_rl.rollout.multi_turn import MultiTurnCollector
from orz_rl.runtime import checkpoint as ckpt
from orz_rl.runtime.metrics import rollout_metrics
from orz_rl.runtime.run_log import RunLog, jsonable
from orz_rl.runtime.shutdown import close_all
from orz_rl.runtime.timing import Timer
from orz_rl.tools.evaluation import evaluate_benchmark, training_benchmarks


def draw_state(sampler: Any | None) -> dict:
    """Where the random draws and the prompt sampler stand now (``rng``, ``sampler``)."""
    return {"rng": ckpt.rng_state(), "sampler": sampler.state_dict() if sampler is not None else None}


class RolloutSide:
    """The env and everything that samples from it, on rank 0.

    Made in two parts, in the order a run draws its random numbers: the env and its services
    first (before any model loads), then generation (:meth:`start`, once the actor is loaded).

    Attributes:
        env: the task's TorchRL env; ``sampler``: its prompt sampler (``None`` for an env without
            one, which then cannot resume mid-epoch).
        services: the reward workers the env's rule needs.
        eval_sets: the benchmarks evaluated during training, by name.
        generation, collector: the engine and policy, and the TorchRL collector over the env.
        ahead: rollouts sampled in a thread: the next, during the critic update
            (``ppo.overlap_critic_update``), or the next k, during the step (``rollout.max_staleness``).
        sampling_figures: the last rollout's ``sampling/`` figures (``rollout.dynamic_sampling``).
        log: the run log (metrics, rollouts, trackers), opened by :meth:`open_log`.
    """

    def __init__(
        self, cfg: TrainConfig, task: Task, problems: list, tokenizer, backend: EngineBackend, dist
    ) -> None:
        r = cfg.rollout
        self.cfg, self.task, self.tokenizer = cfg, task, tokenizer
        engine = describe_generation(cfg, backend, dist)
        print(f"orz-rl: task {cfg.task} | model {cfg.model.path} | {engine} | run {cfg.run_dir}")
        # The env starts the reward workers its rule needs (a sandbox announces its isolation)
        # before any model loads.
        self.services = RewardServices(cfg.reward, cfg.sandbox)
        self.env = task.make_env(problems, self.env_args(r.prompts_per_step, r.samples_per_prompt))
        if r.tools == "python":
            self.env = with_python_tool(self.env, tokenizer, self.services.sandbox, r.tool, r.max_new_tokens)
        self.sampler = getattr(self.env, "sampler", None)
        self.eval_sets: dict[str, tuple[Task, list]] = {}
        if cfg.eval.interval > 0:
            self.eval_sets = training_benchmarks(task, cfg.eval.benchmarks, cfg.eval.limit)
        self.generation = self.collector = self.ahead = self.log = None
        #: The actor version (its updates so far) whose weights the engine holds, where rollouts
        #: run ahead (``rollout.max_staleness``; the trainer sets it once it knows its step).
        self.engine_version = 0
        self.sampling_figures: dict[str, float] = {}

    def env_args(self, prompts_per_step: int, samples_per_prompt: int) -> EnvArgs:
        bos, eos = self.tokenizer.bos_token, self.tokenizer.eos_token
        return EnvArgs(prompts_per_step, samples_per_prompt, self.cfg.data.seed, bos, eos, self.services)

    def start(self, backend: EngineBackend, actor_path: str, actor_model, llm, overlap: bool) -> None:
        """Generation over the loaded actor, and the collector; ``overlap``: a rollout may be
        sampled ahead, during the critic update."""
        gen = start_generation(self.cfg, backend, actor_path, self.tokenizer, actor_model, llm)
        self.generation = gen
        pad = self.tokenizer.pad_token_id
        turns = MultiTurnCollector if self.cfg.rollout.tools != "none" else SingleTurnCollector
        self.collector = make_collector(
            self.env, gen.policy, pad, weight_updater=gen.weight_updater, collector_class=turns
        )
        self._sample_one = partial(sample_rollout, iter(self.collector), gen.policy, self.env)
        self.ahead = RolloutAhead() if overlap or self.cfg.rollout.max_staleness > 0 else None

    def _sample(self) -> tuple[TensorDict, dict[str, float], dict[str, float]]:
        """One step's rollout, its seconds and its sampling figures (``rollout.dynamic_sampling``:
        rollouts until enough groups' rewards differ)."""
        r = self.cfg.rollout
        if not r.dynamic_sampling:
            return *self._sample_one(), {}
        sizes = dict(group_size=r.samples_per_prompt, prompts=r.prompts_per_step)
        pad, rounds = self.tokenizer.pad_token_id, r.max_sampling_rounds
        return sample_differing_groups(self._sample_one, **sizes, max_rounds=rounds, pad_token_id=pad)

    def open_log(
        self, step: int, history: list, prompt_log: list, total_steps: int, sampler: dict | None = None
    ) -> None:
        """Rewind the sampler to the prompts after the last step trained (the collector's first
        reset drew a batch it discards): to the checkpoint's ``sampler`` state where given (a step
        may draw more than ``prompts_per_step``: ``rollout.dynamic_sampling``); and open the run
        log at ``step``."""
        if self.sampler is not None and sampler is not None:
            self.sampler.load_state_dict(sampler)
        elif self.sampler is not None:
            self.sampler.seek(step * self.cfg.rollout.prompts_per_step)
        cfg = self.cfg
        logged = dict(step=step, history=history, prompt_log=prompt_log, total_steps=total_steps)
        self.log = RunLog(cfg.run_dir, **logged, config=jsonable(asdict(cfg)), trackers=cfg.log)

    def sample(self, timer: Timer) -> tuple[TensorDict, float]:
        """The next rollout (the one sampled ahead, if any) and the seconds inside the engine."""
        if self.ahead is not None and self.ahead.pending:  # sampled during the last critic update
            with timer("generation_wait"):
                batch, seconds, self.sampling_figures = self.ahead.take()
        else:
            batch, seconds, self.sampling_figures = self._sample()
        timer.seconds |= {"generation": seconds["generation"], "scoring": seconds["scoring"]}
        return batch, seconds["engine"]

    def sample_ahead(self) -> None:
        """Start sampling the next rollout while the critic updates."""
        self.ahead.start(self._sample, draw_state(self.sampler))

    def fill_ahead(self, first: int, last: int) -> None:
        """``rollout.max_staleness``: start the rollouts of steps ``first`` to ``last`` not started
        yet (those of the first ``ahead.pending`` of them are)."""
        for _ in range(first + self.ahead.pending, last + 1):
            self.ahead.start(self._sample)

    def sync_ahead(self, model, version: int) -> None:
        """``rollout.max_staleness``: the engine takes ``model``'s weights (actor version
        ``version``) before the next rollout started, where it holds older ones; behind rollouts in
        flight, a copy of them is queued (the model trains on)."""
        if self.engine_version >= version:
            return
        if self.ahead.pending:
            copy = {name: t.detach().clone() for name, t in model.state_dict().items()}
            self.ahead.queue(partial(self.sync_weights, copy))
        else:
            self.sync_weights(model)
        self.engine_version = version

    def figures(self, batch: TensorDict, step: int, pack_tokens: int) -> tuple[dict[str, float], list[int]]:
        """The rollout's and the env's figures, and the step's prompt ids (its prompts and two of
        its responses go to the run log)."""
        prompt_ids = self.log.record_rollout(step, batch, self.tokenizer)
        r, p = self.cfg.rollout, self.cfg.ppo
        metrics = rollout_metrics(batch, r.samples_per_prompt, r.max_new_tokens)
        metrics |= self.task.metrics(self.env)
        metrics |= pad_share_metrics(batch, p.micro_batch_size, pack_tokens)
        metrics |= {"data/epoch": self.sampler.epoch} if self.sampler is not None else {}
        metrics |= self.sampling_figures
        return metrics, prompt_ids

    def sync_weights(self, weights) -> None:
        """The engine takes ``weights`` (a module or a state dict); the policy version moves on."""
        self.collector.update_policy_weights_(weights)

    def evaluate(self, model, version: int) -> dict[str, float]:
        """avg@n, pass@n and maj@n on the configured benchmarks (ORZ's protocol), sampled from the
        actor ``model`` of version ``version`` (with rollouts ahead, once they are sampled)."""
        r = self.cfg.rollout
        if r.max_staleness > 0:
            self.ahead.settle()  # nothing runs in the thread now: the engine is the evaluation's
            if self.engine_version < version:
                self.sync_weights(model)
                self.engine_version = version
        out, e = {}, dict(samples=self.cfg.eval.samples, max_prompt_tokens=r.max_prompt_tokens)
        if r.tools != "none":  # the policy reads tokens: it evaluates with the tool it trains with
            e |= dict(tool=r.tool, turn_tokens=r.max_new_tokens)
        for name, (task, problems) in self.eval_sets.items():
            args = (self.generation.policy, self.tokenizer, task, problems, self.env_args)
            same = self.services.math_grader.equivalent if task.name in BUILTIN else None
            out |= {f"eval/{name}/{k}": v for k, v in evaluate_benchmark(*args, **e, same=same)[0].items()}
        return out

    def close(self) -> None:
        """Stop what runs beside the trainer: the rollout ahead, the log, collector, engine, workers."""
        ahead = self.ahead.close if self.ahead is not None else None
        log = self.log.close if self.log is not None else None
        close_all(ahead, log, self.collector.shutdown, self.generation.shutdown, self.services.close)
