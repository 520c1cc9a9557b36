"""The ORZ training loop: collect, score, value, advantage, update actor, update critic.

Read :meth:`Trainer.train_step` top to bottom: one function per phase, the
phases in order. Everything ORZ-specific is a field of :class:`TrainConfig`.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from tensordict import TensorDict, set_list_to_stack
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)

from orz_rl import keys
from orz_rl.actor import make_training_actor
from orz_rl.advantages import compute_advantages, make_gae, set_next_values, set_token_rewards
from orz_rl.batch_grader import MathGrader
from orz_rl.checkpoint import (
    latest_checkpoint,
    load_state,
    prune_checkpoints,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from orz_rl.code_judge import CodeJudge
from orz_rl.config import TrainConfig
from orz_rl.critic import Critic, make_value_operator
from orz_rl.data import Problem, load_code_problems, load_problems
from orz_rl.distributed import Distributed
from orz_rl.envs.math import MathEnv
from orz_rl.envs.mixed import MathAndCodeEnv, render_problem
from orz_rl.evaluation import evaluate_benchmark, resolve_benchmark
from orz_rl.generation import (
    Sampling,
    is_engine_pool,
    make_transformers_policy,
    make_vllm_engine,
    make_vllm_policy,
    resolve_backend,
)
from orz_rl.losses import ClippedValueLoss, TokenClipPPOLoss
from orz_rl.metrics import MetricsLogger, rewrite_jsonl, rollout_metrics, truncate_jsonl
from orz_rl.modeling import enable_activation_checkpointing, load_causal_lm, load_tokenizer
from orz_rl.packing import pad_shares
from orz_rl.rollout import make_collector, rollout_buffer
from orz_rl.sandbox import Sandbox
from orz_rl.text_env import as_strings
from orz_rl.validation import (
    config_problems,
    length_problems,
    model_positions,
    prompt_sources,
    raise_if_any,
    resume_problems,
)
from orz_rl.weight_sync import vLLMInProcessUpdater

_TEXT_KEYS = (keys.PROMPT_TEXT, keys.RESPONSE_TEXT, keys.ANSWER, keys.FINISH_REASON)


class Timer:
    """Accumulates wall-clock seconds per named phase of a step."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def _warmup(steps: int):
    # ORZ: linear warm-up over the first `steps` optimiser steps, then constant.
    return lambda step: min(1.0, (step + 1) / max(steps, 1))


def _micro_batches(part: TensorDict, size: int, count: int, spare: TensorDict):
    """``count`` micro-batches of at most ``size`` rows of ``part``, as ``(rows, weight)``: every
    rank runs as many passes (each forward of a sharded model is a collective); past ``part``'s
    rows a pass runs on ``spare`` with weight 0."""
    for k in range(count):
        rows = part[k * size : (k + 1) * size]
        yield (rows, 1.0) if rows.shape[0] else (spare, 0.0)


def write_toy_data(cfg: TrainConfig) -> None:
    """Write the generated tasks the CPU recipes train on (a second, cheap)."""
    if cfg.data.generate_toy_task:
        from orz_rl.toy_task import write_orz_train_file

        write_orz_train_file(cfg.data.train_file, seed=cfg.data.seed, max_operand=cfg.data.toy_max_operand)
    if cfg.data.generate_toy_code:
        from orz_rl.toy_task import write_code_file

        write_code_file(cfg.data.code_file, seed=cfg.data.seed, max_operand=cfg.data.toy_max_operand)


def build_tiny_model_if_missing(cfg: TrainConfig) -> None:
    """Build the embedded tiny model the CPU recipes start from, where it is not built yet."""
    if cfg.model.build_tiny_if_missing and not Path(cfg.model.path).is_dir():
        from orz_rl.tiny_model import TinyModelConfig, build

        print(f"building the embedded tiny model at {cfg.model.path} (about 30 s)")
        build(TinyModelConfig(out=Path(cfg.model.path), code_share=cfg.model.tiny_code_share))


def load_checked(cfg: TrainConfig) -> tuple[list[Problem], list[Problem], object | None]:
    """The run's math and code problems and its tokenizer, once every problem of the configuration
    is reported at once (:class:`~orz_rl.validation.ConfigError`), before any model loads.

    Counts, files and fields are checked first, before the tiny model is built; then the prompt
    lengths, which need only the data and the tokenizer (``None`` for a hub name, loaded later).
    """
    found = config_problems(cfg)
    write_toy_data(cfg)
    if not found:  # half a minute of work, for a configuration that can run
        build_tiny_model_if_missing(cfg)
    problems, code_problems, tokenizer = [], [], None
    code_file = cfg.data.code_file
    if Path(cfg.data.train_file).is_file() and (not code_file or Path(code_file).is_file()):
        # A malformed line is its own error (file and line).
        problems = load_problems(cfg.data.train_file)
        code_problems = load_code_problems(code_file) if code_file else []
    if Path(cfg.model.path).is_dir() and problems:
        tokenizer = load_tokenizer(cfg.model.path)
        listed = problems + code_problems
        prompts = [render_problem(p, tokenizer.bos_token) for p in listed]
        positions = model_positions(cfg.model.path)
        found += length_problems(cfg, prompts, prompt_sources(cfg, listed), tokenizer, positions)
    raise_if_any(found)
    return problems, code_problems, tokenizer


def find_resume_checkpoint(cfg: TrainConfig) -> Path | None:
    """The checkpoint a run continues from: ``--resume``'s (which must have one), else run_dir's
    newest complete one when ``auto_resume`` (broken ones are reported and skipped)."""
    if cfg.resume is not None:
        found = latest_checkpoint(cfg.resume)
        if found is None:
            raise FileNotFoundError(
                f"resume: {str(cfg.resume)!r} holds no complete checkpoint to resume from"
            )
        return found
    return latest_checkpoint(cfg.run_dir) if cfg.auto_resume else None


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value) if isinstance(value, Path) else value


class _StopRequest:
    """SIGINT/SIGTERM as a request to stop after the current step; a second SIGINT interrupts."""

    def __init__(self) -> None:
        self.requested: str | None = None

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name
        print(f"orz-rl: {self.requested}: stopping after this step, with a checkpoint", flush=True)

    @contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield  # signals reach the main thread only
            return
        previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class Trainer:
    """Holds the actor, critic, env, collector, losses and optimisers of one run.

    Args:
        cfg: the run.
        llm: a ``vllm.LLM`` to generate with instead of starting one. In-process
            vLLM engines share process-wide state (their parallel groups): deleting
            one breaks any other alive in the process, so a process that trains
            several times passes its one engine along. The trainer loads its
            actor's weights into it before the first rollout.
    """

    def __init__(self, cfg: TrainConfig, *, llm=None) -> None:
        if cfg.resume is not None:
            cfg = replace(cfg, run_dir=cfg.resume)
        self.cfg = cfg
        set_list_to_stack(True).set()
        self.dist = Distributed.from_env()
        main = self.dist.is_main
        if self.dist.active and resolve_backend(cfg.rollout.backend) == "transformers":
            raise ValueError(
                "under torchrun, rollouts come from vLLM engines in Ray actors: the transformers "
                "backend would generate with a sharded actor on rank 0 alone"
            )
        if self.dist.active and cfg.layout.vllm_engines < 1:
            raise ValueError(
                f"under torchrun ({self.dist.world_size} ranks) vLLM cannot run inside a trainer "
                "process (it would join torch.distributed's world): pass --layout.vllm-engines N "
                "(N >= 1 engines in Ray actors)"
            )
        problems, code_problems, tokenizer = load_checked(cfg) if main else ([], [], None)
        # The other ranks load the model rank 0 may have just built.
        self.dist.broadcast(None)
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        dtype = getattr(torch, cfg.model.dtype)

        # Started (and its isolation announced) only when there is code to run, before any model
        # loads: a machine where no isolation works is told so at once.
        self.judge = CodeJudge(Sandbox(cfg.sandbox)) if code_problems else None
        self.eval_sets = {}
        if cfg.eval.interval > 0 and main:
            for spec in cfg.eval.benchmarks:
                name, path = resolve_benchmark(spec)
                self.eval_sets[name] = load_problems(path)[: cfg.eval.limit or None]
        self.checkpoint = find_resume_checkpoint(cfg)
        state = load_state(self.checkpoint) if self.checkpoint else None
        if state is not None and "config" in state:
            raise_if_any(resume_problems(state["config"], _jsonable(asdict(cfg))))
        actor_path = str(self.checkpoint / "actor") if self.checkpoint else cfg.model.path
        critic_path = str(self.checkpoint / "critic") if self.checkpoint else cfg.model.path
        self.tokenizer = tokenizer or load_tokenizer(cfg.model.path)

        r = cfg.rollout
        self.actor_model = load_causal_lm(actor_path, dtype=dtype).eval()
        # Separate copy of the base model: actor and critic share no weights (ORZ).
        self.critic = Critic.from_pretrained(critic_path, dtype=dtype).eval()
        self.backend = resolve_backend(r.backend)
        self.llm = self.weight_updater = self.env = self.grader = None
        self.policy = self.collector = None
        if main:
            self._start_rollouts(problems, code_problems, actor_path, llm)

        p, o = cfg.ppo, cfg.optim
        self.gae = make_gae(p.gamma, p.lmbda)
        if p.activation_checkpointing:
            enable_activation_checkpointing(self.actor_model)
            enable_activation_checkpointing(self.critic.backbone)
        #: Token budget of a packed row in the training forward passes (0: padded batches).
        self.pack_tokens = r.max_prompt_tokens + r.max_new_tokens if p.pack_tokens < 0 else p.pack_tokens
        self.actor = make_training_actor(self.actor_model, self.pack_tokens)
        self.critic.pack_tokens = self.pack_tokens
        if self.dist.active and main:
            backend = "NCCL" if self.dist.device.type == "cuda" else "Gloo"
            print(f"orz-rl: training on {self.dist.world_size} ranks (FSDP2 over {backend})")
        # The module FSDP wraps is the one the loss calls (ResponseLogits): its forward gathers
        # the embeddings and the head around the decoder layers' own gathers.
        self.dist.shard(self.actor[0].module, self.actor_model.get_decoder().layers)
        self.dist.shard(self.critic, self.critic.backbone.layers)
        self.value_operator = make_value_operator(self.critic)
        self.policy_loss = TokenClipPPOLoss(
            self.actor, clip_epsilon=p.clip_epsilon, aggregation=p.aggregation
        )
        self.value_loss = ClippedValueLoss(
            self.value_operator, clip_value=p.value_clip, coeff=p.value_loss_coeff, aggregation=p.aggregation
        )
        adamw = dict(betas=o.betas, weight_decay=o.weight_decay)
        self.actor_optim = torch.optim.AdamW(self.actor_model.parameters(), lr=o.actor_lr, **adamw)
        self.critic_optim = torch.optim.AdamW(self.critic.parameters(), lr=o.critic_lr, **adamw)
        self.actor_sched = torch.optim.lr_scheduler.LambdaLR(self.actor_optim, _warmup(o.warmup_steps))
        self.critic_sched = torch.optim.lr_scheduler.LambdaLR(
            self.critic_optim, _warmup(o.critic_warmup_steps)
        )

        num_problems = self.dist.broadcast(len(self.env.problems) if main else None)
        steps_per_episode = math.ceil(num_problems / r.prompts_per_step)
        self.total_steps = steps_per_episode * cfg.num_episodes
        if cfg.max_steps >= 0:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        self.step = 0
        #: Seconds of the current step inside the actor's and critic's forward and backward passes.
        self.model_clock = Timer()
        self.history: list[dict[str, float]] = []
        #: The distinct prompt ids each step trained on, in order (``prompts.jsonl``).
        self.prompt_log: list[list[int]] = []
        if state is not None:
            self._restore(state)
        self.logger = self._prompts_file = None
        self._rollouts_path = cfg.run_dir / "rollouts.jsonl"
        if main:
            # The collector's first reset drew a batch it then discards: rewind the sampler so that
            # the first rollout trains on the prompts that follow the last step trained (none lost).
            self.env.sampler.seek(self.step * r.prompts_per_step)
            # The run's files read as one run: what a crash logged after the checkpoint goes.
            self.logger = MetricsLogger(cfg.run_dir, history=self.history)
            self._prompts_file = rewrite_jsonl(
                cfg.run_dir / "prompts.jsonl",
                [{"step": i + 1, "prompt_ids": p} for i, p in enumerate(self.prompt_log)],
            )
            truncate_jsonl(self._rollouts_path, self.step)
            (cfg.run_dir / "config.json").write_text(json.dumps(_jsonable(asdict(cfg)), indent=1))
        if state is not None:
            # Last, after every set-up step that draws random numbers (vLLM seeds torch's
            # generator when it starts): the next step draws exactly what it would have.
            set_rng_state(state["rng"])

    def _start_rollouts(self, problems, code_problems, actor_path: str, llm) -> None:
        """Rank 0's half of the set-up: the env with its reward, the engine(s), the collector."""
        cfg, r = self.cfg, self.cfg.rollout
        workers = cfg.reward.workers or os.cpu_count() or 1
        self.grader = MathGrader(workers=workers, timeout=cfg.reward.timeout)
        env_args = dict(
            prompts_per_step=r.prompts_per_step,
            samples_per_prompt=r.samples_per_prompt,
            seed=cfg.data.seed,
            bos=self.tokenizer.bos_token,
            eos=self.tokenizer.eos_token,
        )
        if code_problems:
            self.env = MathAndCodeEnv(
                problems + code_problems, grader=self.grader, judge=self.judge, **env_args
            )
        else:
            self.env = MathEnv(problems, grader=self.grader, **env_args)

        sampling = Sampling(r.max_new_tokens, temperature=r.temperature, top_p=r.top_p, top_k=r.top_k)
        print(f"orz-rl: generating with {self.backend}")
        engines = cfg.layout.vllm_engines
        if self.backend == "vllm" and engines > 0:
            from orz_rl.ray_engines import RayEngineUpdater, RayvLLMEngines

            print(f"orz-rl: starting {engines} vLLM engine(s) in Ray actors")
            llm = RayvLLMEngines(
                actor_path,
                engines,
                tensor_parallel=cfg.layout.vllm_tensor_parallel,
                ray_address=cfg.layout.ray_address,
                dtype=cfg.model.dtype,
                seed=cfg.seed,
                max_model_len=r.max_prompt_tokens + r.max_new_tokens,
                gpu_memory_utilization=r.vllm_gpu_memory_utilization,
                cpu_kv_cache_gib=r.vllm_cpu_kv_cache_gib,
            )
            self.llm = llm
            self.weight_updater = RayEngineUpdater(llm)
            self.policy = make_vllm_policy(llm, self.tokenizer, sampling)
        elif self.backend == "vllm":
            reused = llm is not None
            if not reused:
                try:
                    llm = make_vllm_engine(
                        actor_path,
                        dtype=cfg.model.dtype,
                        seed=cfg.seed,
                        max_model_len=r.max_prompt_tokens + r.max_new_tokens,
                        gpu_memory_utilization=r.vllm_gpu_memory_utilization,
                        cpu_kv_cache_gib=r.vllm_cpu_kv_cache_gib,
                    )
                except ValueError as e:  # vLLM's message names its own flags, not the recipe's
                    field = (
                        f"rollout.vllm_gpu_memory_utilization = {r.vllm_gpu_memory_utilization}"
                        if torch.cuda.is_available()
                        else f"rollout.vllm_cpu_kv_cache_gib = {r.vllm_cpu_kv_cache_gib}"
                    )
                    raise ValueError(f"vLLM did not start with {field}: {e}") from None
            self.llm = llm
            self.weight_updater = vLLMInProcessUpdater(llm)
            if reused:
                # It may hold another run's weights. Pushed straight to the engine,
                # not through the collector: the policy version stays 0.
                self.weight_updater.push_weights(self.actor_model)
            self.policy = make_vllm_policy(llm, self.tokenizer, sampling)
        else:
            # Generation runs on the actor's own module: its weights need no copy.
            self.policy = make_transformers_policy(self.actor_model, self.tokenizer, sampling)
        self.collector = make_collector(
            self.env, self.policy, self.tokenizer.pad_token_id, weight_updater=self.weight_updater
        )
        self._rollouts = iter(self.collector)

    # --- phases -----------------------------------------------------------------

    def collect(self, timer: Timer) -> TensorDict:
        """Generate one response per env element and score it (the env's reward).

        Under torchrun rank 0 collects and every rank receives the batch (without its texts),
        with rank 0's RNG state, so that all ranks draw the same mini-batches."""
        batch = None
        if self.dist.is_main:
            with timer("generation"):
                batch = next(self._rollouts)
            timer.seconds["generation"] -= self.env.last_score_seconds
            timer.seconds["scoring"] = self.env.last_score_seconds
        if self.dist.active:
            with timer("broadcast"):
                shared = self.dist.broadcast(
                    (batch.exclude(*_TEXT_KEYS), torch.get_rng_state()) if batch is not None else None
                )
            if batch is None:
                batch, rng = shared
                torch.set_rng_state(rng)
        return batch

    def grading_metrics(self) -> dict[str, float]:
        """How the step's rewards were decided: the env's counts (``grader/*`` for math answers:
        checked in workers, timed out...; ``code/*`` for programs: passed, timed out, memory...)."""
        return dict(self.env.last_score_stats) if self.env is not None else {}

    def _passes(self, rows: TensorDict, n: int):
        """This rank's micro-batches of ``rows`` (a batch or mini-batch of ``n`` sequences) as
        ``(micro-batch, weight)`` on the training device (see :func:`_micro_batches`)."""
        mb = self.cfg.ppo.micro_batch_size
        part = rows[self.dist.share(n)]
        for micro, weight in _micro_batches(part, mb, self.dist.pieces(n, mb), rows[:1]):
            yield (micro if self.dist.device.type == "cpu" else micro.to(self.dist.device)), weight

    @torch.no_grad()
    def evaluate_old_policy_and_values(self, batch: TensorDict, timer: Timer) -> None:
        """PPO's old log-probs (from the trainer's actor, as ORZ does) and the critic's V_old
        (each rank computes its slice of the batch; every rank gets all of it)."""
        n = batch.shape[0]
        with timer("old_log_probs"):
            log_probs = []
            for micro, weight in self._passes(batch, n):
                with self.model_clock("forward"):
                    lp = self.actor.get_dist(micro).log_prob(micro.get(keys.ACTION)).cpu()
                log_probs += [lp] if weight else []
            batch.set(keys.SAMPLE_LOG_PROB, self.dist.gather_rows(torch.cat(log_probs), n))
        with timer("critic_values"):
            values = []
            for micro, weight in self._passes(batch, n):
                with self.model_clock("forward"):
                    v = self.value_operator(micro.clone(False)).get(keys.STATE_VALUE).cpu()
                values += [v] if weight else []
            batch.set(keys.STATE_VALUE, self.dist.gather_rows(torch.cat(values), n))

    def compute_advantages(self, batch: TensorDict, timer: Timer) -> None:
        """Sparse token rewards, then TorchRL's GAE (gamma = lambda = 1) and batch normalisation."""
        with timer("advantages"):
            set_token_rewards(batch, self.cfg.ppo.reward_clip)
            set_next_values(batch)
            compute_advantages(batch, self.gae, normalize=self.cfg.ppo.normalize_advantages)

    def _optimise(self, loss_module, loss_key: str, optim, sched, num_steps: int) -> dict[str, float]:
        """``num_steps`` optimiser steps over disjoint mini-batches of the buffer (under torchrun,
        each rank computes its slice of every mini-batch and FSDP sums the gradients)."""
        mini = math.ceil(len(self.buffer) / num_steps)
        totals: dict[str, float] = {}
        grad_norm = 0.0
        for _ in range(num_steps):
            sample = self.buffer.sample(batch_size=mini)
            n_seq = sample.shape[0]
            n_tok = int(sample.get(keys.RESPONSE_MASK).sum())
            optim.zero_grad(set_to_none=True)
            for micro, weight in self._passes(sample, n_seq):
                with self.model_clock("forward_backward"):  # with the loss on the model's outputs
                    out = loss_module(micro, num_sequences=n_seq, num_tokens=n_tok)
                    (out.get(loss_key) * weight).backward()
                # The loss is already normalised by the mini-batch counts (its parts
                # sum to the whole); diagnostics are micro-batch means, so weight them.
                share = weight * micro.shape[0] / n_seq
                for k, v in out.items():
                    part = v.item() * weight if k == loss_key else v.item() * share
                    totals[k] = totals.get(k, 0.0) + part / num_steps
            # The optimiser's own parameters: under FSDP2 the module may hold unsharded stand-ins
            # (the root's, between a backward and the next forward) that carry no gradient.
            params = [p for group in optim.param_groups for p in group["params"]]
            norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.ppo.max_grad_norm)
            grad_norm += norm.full_tensor().item() if hasattr(norm, "full_tensor") else norm.item()
            optim.step()
            sched.step()
        return self.dist.sum(totals) | {"grad_norm": grad_norm / num_steps}

    def update_policy(self, timer: Timer) -> dict[str, float]:
        """ORZ: exactly one actor step per rollout (``policy_steps_per_rollout``)."""
        with timer("policy_update"):
            out = self._optimise(
                self.policy_loss,
                "loss_objective",
                self.actor_optim,
                self.actor_sched,
                self.cfg.ppo.policy_steps_per_rollout,
            )
        return {f"actor/{k}": v for k, v in out.items()} | {"actor/lr": self.actor_sched.get_last_lr()[0]}

    def update_critic(self, timer: Timer) -> dict[str, float]:
        """ORZ: 12 critic mini-batch steps per rollout (``critic_steps_per_rollout``)."""
        with timer("critic_update"):
            out = self._optimise(
                self.value_loss,
                "loss_critic",
                self.critic_optim,
                self.critic_sched,
                self.cfg.ppo.critic_steps_per_rollout,
            )
        return {f"critic/{k}": v for k, v in out.items()} | {"critic/lr": self.critic_sched.get_last_lr()[0]}

    def evaluate(self) -> dict[str, float]:
        """avg@k and pass@k of the current policy on the configured benchmarks (ORZ's protocol;
        rank 0, which holds the engines)."""
        out = {}
        for name, problems in self.eval_sets.items():
            figures, _ = evaluate_benchmark(
                self.policy,
                self.tokenizer,
                problems,
                samples=self.cfg.eval.samples,
                max_prompt_tokens=self.cfg.rollout.max_prompt_tokens,
                grader=self.grader,
            )
            out |= {f"eval/{name}/{k}": v for k, v in figures.items()}
        return out

    def sync_weights(self, timer: Timer) -> None:
        """The updated actor's weights into the generation engine before the next rollout."""
        with timer("weight_sync"):
            if self.backend == "vllm":  # known on every rank; the engines are rank 0's
                # Sharded under torchrun: gathered whole, onto rank 0 (a collective).
                model = self.actor_model
                weights = self.dist.full_state_dict(model) if self.dist.active else model
                if self.dist.is_main:
                    self.collector.update_policy_weights_(weights)
            elif self.dist.is_main:
                self.collector.increment_version()

    def train_step(self) -> dict[str, float]:
        """One generation step of ORZ: the phases in order."""
        timer = Timer()
        self.model_clock = Timer()
        engine_before = getattr(self.policy, "generate_seconds", 0.0)
        start = time.perf_counter()
        batch = self.collect(timer)
        self.evaluate_old_policy_and_values(batch, timer)
        self.compute_advantages(batch, timer)
        self.buffer = rollout_buffer(batch.exclude(*_TEXT_KEYS))
        metrics = {}
        mask = batch.get(keys.RESPONSE_MASK)
        if self.dist.is_main:  # the texts stay on rank 0, and only rank 0 logs
            self.record_rollout(batch)
            r = self.cfg.rollout
            metrics = rollout_metrics(batch, r.samples_per_prompt, r.max_new_tokens)
            metrics |= self.grading_metrics()
            # Pad tokens in the training forward passes, padded to the longest and packed (ORZ).
            prompt_mask = batch.get(keys.PROMPT_MASK)
            budget = self.pack_tokens or mask.shape[-1] + prompt_mask.shape[-1]
            padded, packed = pad_shares(prompt_mask, mask, self.cfg.ppo.micro_batch_size, budget)
            metrics["data/pad_share_padded"], metrics["data/pad_share_packed"] = padded, packed
        raw_adv = batch.get(keys.VALUE_TARGET).squeeze(-1) - batch.get(keys.STATE_VALUE).squeeze(-1)
        metrics["advantage/mean"] = raw_adv[mask].mean().item()
        metrics["advantage/abs_mean"] = raw_adv[mask].abs().mean().item()
        metrics["critic/value_mean"] = batch.get(keys.STATE_VALUE).squeeze(-1)[mask].mean().item()
        metrics["data/policy_version"] = batch.get(keys.POLICY_VERSION).max().item()
        metrics |= self.update_policy(timer)
        self.sync_weights(timer)
        metrics |= self.update_critic(timer)
        timer.seconds["step"] = time.perf_counter() - start
        metrics |= {f"time/{k}": v for k, v in timer.seconds.items()}
        # The model's own arithmetic: the engine sampling, the trainer's forward and backward
        # passes. The rest of the step is what ORZ's scale multiplies for nothing.
        metrics["time/model_engine"] = getattr(self.policy, "generate_seconds", 0.0) - engine_before
        metrics["time/model_forward_backward"] = sum(self.model_clock.seconds.values())
        model = metrics["time/model_engine"] + metrics["time/model_forward_backward"]
        metrics["time/outside_model"] = timer.seconds["step"] - model
        if self.dist.is_main:
            metrics["data/epoch"] = self.env.sampler.epoch
        return metrics

    # --- run --------------------------------------------------------------------

    def _optim_state(self, model: nn.Module, optim) -> dict:
        if not self.dist.active:
            return optim.state_dict()
        # Whole (unsharded) and keyed by parameter name, so a run resumes on any number of ranks.
        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return get_optimizer_state_dict(model, optim, options=options)

    def _load_optim_state(self, model: nn.Module, optim, saved: dict) -> None:
        by_index = isinstance(next(iter(saved["state"]), 0), int)  # one process's format
        if by_index and not self.dist.active:
            optim.load_state_dict(saved)
            return
        if by_index:  # indices follow the parameters' order, which names give
            names = [name for name, _ in model.named_parameters()]
            groups = [g | {"params": [names[i] for i in g["params"]]} for g in saved["param_groups"]]
            saved = {"state": {names[i]: v for i, v in saved["state"].items()}, "param_groups": groups}
        options = StateDictOptions(full_state_dict=True)
        set_optimizer_state_dict(model, optim, optim_state_dict=saved, options=options)

    def state(self) -> dict:
        """Everything beyond the two models that the next step depends on (``orz_rl.checkpoint``)."""
        return {
            "step": self.step,
            "actor_optim": self._optim_state(self.actor_model, self.actor_optim),
            "critic_optim": self._optim_state(self.critic, self.critic_optim),
            "actor_sched": self.actor_sched.state_dict(),
            "critic_sched": self.critic_sched.state_dict(),
            "rng": rng_state(),
            "sampler": self.env.sampler.state_dict() if self.env is not None else None,
            "history": self.history,
            "prompt_log": self.prompt_log,
            "config": _jsonable(asdict(self.cfg)),
        }

    def _restore(self, state: dict) -> None:
        self.step = state["step"]
        self._load_optim_state(self.actor_model, self.actor_optim, state["actor_optim"])
        self._load_optim_state(self.critic, self.critic_optim, state["critic_optim"])
        self.actor_sched.load_state_dict(state["actor_sched"])
        self.critic_sched.load_state_dict(state["critic_sched"])
        self.history = list(state["history"])
        self.prompt_log = list(state["prompt_log"])
        for _ in range(self.step if self.collector is not None else 0):
            self.collector.increment_version()  # one update per step so far: versions continue
        print(f"orz-rl: resuming from {self.checkpoint} (step {self.step} of {self.total_steps})")

    def save(self, tag: str) -> Path:
        """A complete checkpoint under ``run_dir/checkpoints/tag`` (atomic; ``keep_last`` retained).

        Under torchrun every rank takes part (the sharded weights and optimiser states are
        gathered) and rank 0 writes it."""
        path = self.cfg.run_dir / "checkpoints" / tag
        whole = self.dist.active
        actor_state = self.dist.full_state_dict(self.actor_model) if whole else None
        critic_state = self.dist.full_state_dict(self.critic) if whole else None
        state = self.state()
        if self.dist.is_main:
            save_checkpoint(
                path,
                self.actor_model,
                self.tokenizer,
                self.critic,
                state,
                actor_state=actor_state,
                critic_state=critic_state,
            )
            prune_checkpoints(self.cfg.run_dir, self.cfg.keep_last)
        return path

    def record_rollout(self, batch: TensorDict) -> None:
        """The step's prompt ids (``prompts.jsonl``), and one right and one wrong response with
        their per-token advantages and values (``rollouts.jsonl``, for ``orz-rl plot``)."""
        ids = list(dict.fromkeys(batch.get(keys.PROMPT_ID).tolist()))
        self.prompt_log.append(ids)
        self._prompts_file.write(json.dumps({"step": self.step + 1, "prompt_ids": ids}) + "\n")
        rewards = batch.get(keys.EPISODE_REWARD).tolist()
        picks = [rewards.index(r) for r in (1.0, 0.0) if r in rewards]
        mask = batch.get(keys.RESPONSE_MASK)
        prompts = as_strings(batch.get(keys.PROMPT_TEXT))
        with self._rollouts_path.open("a") as f:
            for i in picks:
                tokens = batch.get(keys.ACTION)[i][mask[i]].tolist()
                row = {
                    "step": self.step + 1,
                    "prompt": prompts[i],
                    "tokens": [self.tokenizer.decode([t]) for t in tokens],
                    "advantages": batch.get(keys.ADVANTAGE)[i][mask[i]].squeeze(-1).tolist(),
                    "values": batch.get(keys.STATE_VALUE)[i][mask[i]].squeeze(-1).tolist(),
                    "reward": rewards[i],
                }
                f.write(json.dumps(row) + "\n")

    def train(self) -> list[dict[str, float]]:
        """Train to ``total_steps``; returns the metrics of the steps this call ran.

        SIGINT or SIGTERM ends the run after the step in progress, with a checkpoint
        to resume from; a second SIGINT stops at once, without one.
        """
        from tqdm import tqdm

        cfg = self.cfg
        history = []
        started = time.monotonic()
        main = self.dist.is_main
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            desc="orz-rl",
            disable=not (cfg.progress and main),
            dynamic_ncols=True,
        )
        stop = _StopRequest()
        try:
            with stop.installed():
                while self.step < self.total_steps:
                    # Under torchrun every rank stops at the same step (a rank left alone would wait).
                    if self.dist.any(stop.requested is not None):
                        path = self.save(f"step_{self.step}")
                        if main:
                            why = stop.requested or "a signal to another rank"
                            print(f"orz-rl: {why} at step {self.step}: saved {path}; run again to resume")
                        return history
                    metrics = self.train_step()
                    self.step += 1
                    if cfg.eval.interval > 0 and self.step % cfg.eval.interval == 0 and main:
                        start = time.perf_counter()
                        metrics |= self.evaluate()
                        metrics["time/eval"] = time.perf_counter() - start
                    if main:
                        self.logger.log(self.step, metrics)
                        bar.update(1)
                        bar.set_postfix(
                            reward=f"{metrics['reward/mean']:.3f}",
                            len=f"{metrics['response_length/mean']:.1f}",
                            vloss=f"{metrics['critic/loss_critic']:.3f}",
                        )
                    self.history.append(metrics)
                    history.append(metrics)
                    if cfg.save_interval > 0 and self.step % cfg.save_interval == 0:
                        self.save(f"step_{self.step}")
                    late = cfg.max_minutes > 0 and time.monotonic() - started > cfg.max_minutes * 60
                    if self.dist.any(late):
                        break
        finally:
            bar.close()
            if main:
                self.logger.close()
                self._prompts_file.close()
                self.collector.shutdown()
                self.grader.close()
                if is_engine_pool(self.llm):
                    self.llm.shutdown()
            if self.judge is not None:
                self.judge.close()
                self.judge.sandbox.close()
        self.save("final")
        return history
