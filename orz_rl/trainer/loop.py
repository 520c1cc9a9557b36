"""The ORZ training loop: collect, score, value, advantage, update the actor, sync, update the critic.

Read :meth:`Trainer.train_step` top to bottom: one method per phase, the phases in order, each
step's batch handed from one to the next. Each phase's machinery lives in the pipeline's folders:
the task and its env (``envs/``), the collector and weight sync (``orz_rl/rollout``), the
advantages (``orz_rl/advantages``), losses and the optimiser steps (``orz_rl/ppo``), ranks,
checkpoints and logs (``orz_rl/runtime``). What only rank 0 holds (env, generation, collector, run
log) is :class:`~orz_rl.trainer.rollouts.RolloutSide`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from tensordict import TensorDict, set_list_to_stack

from orz_rl import keys
from orz_rl.advantages.registry import estimate_advantages
from orz_rl.config import TrainConfig
from orz_rl.models.loading import load_tokenizer
from orz_rl.ppo.learner import PPOLearner
from orz_rl.ppo.update import optimise
from orz_rl.rewards.overlong import shape_overlong
from orz_rl.rollout.buffers import ReplayBuffer, rollout_buffer, step_generator
from orz_rl.rollout.engines import resolve_backend
from orz_rl.runtime import checkpoint as ckpt
from orz_rl.runtime import preflight
from orz_rl.runtime.distributed import Distributed
from orz_rl.runtime.metrics import memory_metrics, reward_target_reached, staleness_metrics
from orz_rl.runtime.metrics import training_batch_metrics as batch_metrics
from orz_rl.runtime.run_log import jsonable
from orz_rl.runtime.signals import StopRequest
from orz_rl.runtime.timing import Timer, step_time_metrics, throughput_metrics
from orz_rl.trainer.rollouts import RolloutSide, draw_state

_TEXT_KEYS = (keys.PROMPT_TEXT, keys.RESPONSE_TEXT, keys.ANSWER, keys.FINISH_REASON)
_BAR = {"reward": "reward/mean", "len": "response_length/mean", "vloss": "critic/loss_critic"}
_BAR |= {"gen tok/s": "perf/gen_tokens_per_s"}


class Trainer:
    """One run: the learner (actor, critic, losses, optimisers) on every rank, and on rank 0 the
    rollout side (env, generation, collector, run log: :class:`RolloutSide`, ``None`` elsewhere).

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
        r = cfg.rollout
        self.backend = resolve_backend(r.backend, r.max_new_tokens, cfg.layout.vllm_engines > 0)
        preflight.check_ranks(cfg, self.backend, self.dist.world_size)
        self.task, problems, tokenizer = preflight.load_checked(cfg) if main else (None, [], None)
        self.dist.broadcast(None)  # the other ranks load the model rank 0 may have just built
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        ckpt.seed_all(cfg.seed)
        self.checkpoint = preflight.find_resume_checkpoint(cfg)
        state = ckpt.load_state(self.checkpoint) if self.checkpoint else None
        if state is not None and "config" in state:
            preflight.raise_if_any(preflight.resume_problems(state["config"], jsonable(asdict(cfg))))
        self.tokenizer = tokenizer or load_tokenizer(cfg.model.path)
        self.rollouts = (
            RolloutSide(cfg, self.task, problems, self.tokenizer, self.backend, self.dist) if main else None
        )
        actor_path = str(self.checkpoint / "actor") if self.checkpoint else cfg.model.path
        critic_path = str(self.checkpoint / "critic") if self.checkpoint else cfg.model.path
        reference_path = str(self.checkpoint / "reference") if self.checkpoint else cfg.model.path
        self.learner = PPOLearner(cfg, actor_path, critic_path, self.dist, reference_path)
        # ppo.overlap_critic_update: the next rollout sampled during the critic update.
        overlap = cfg.ppo.overlap_critic_update and not self.dist.active and self.learner.critic is not None
        self.overlap = overlap
        if main:
            self.rollouts.start(self.backend, actor_path, self.learner.actor_model, llm, overlap)
            if state is not None and state.get("rollouts_ahead"):  # rollout.max_staleness: sampled
                self.rollouts.ahead.preload(state["rollouts_ahead"])
        steps_per_episode = math.ceil(self.dist.broadcast(len(problems)) / r.prompts_per_step)
        self.total_steps = steps_per_episode * cfg.num_episodes
        if cfg.max_steps >= 0:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        self.step, self._saved = 0, (-1, Path())  # the step and folder of the last checkpoint saved
        #: Seconds of the current step inside the actor's and critic's forward and backward passes.
        self.model_clock = Timer()
        #: The last step's training data (for inspection: the step passes it from phase to phase).
        self.last_buffer: ReplayBuffer | None = None
        self.history: list[dict[str, float]] = []
        #: The distinct prompt ids each step trained on, in order (``prompts.jsonl``).
        self.prompt_log: list[list[int]] = []
        if state is not None:
            self._restore(state)
        if main:
            self.rollouts.engine_version = self.step  # the engine holds the actor it started from
            saved = state.get("sampler") if state is not None else None
            self.rollouts.open_log(self.step, self.history, self.prompt_log, self.total_steps, saved)
        if state is not None:
            # Last, after every set-up step that draws random numbers (vLLM seeds torch's
            # generator when it starts): the next step draws exactly what it would have.
            ckpt.set_rng_state(state["rng"])

    # --- phases -----------------------------------------------------------------

    def collect(self, timer: Timer) -> tuple[TensorDict, float]:
        """Generate one response per env element and score it (the env's reward); and the seconds
        inside the engine.

        Under torchrun rank 0 collects and every rank receives the batch (without its texts),
        with rank 0's RNG state, so that all ranks draw the same mini-batches."""
        batch, engine_seconds = None, 0.0
        if self.rollouts is not None:
            batch, engine_seconds = self.rollouts.sample(timer)
        if self.dist.active:
            with timer("broadcast"):
                shared = self.dist.broadcast(
                    (batch.exclude(*_TEXT_KEYS), torch.get_rng_state()) if batch is not None else None
                )
            if batch is None:
                batch, rng = shared
                torch.set_rng_state(rng)
        return batch, engine_seconds

    def start_next_rollout(self) -> None:
        """``ppo.overlap_critic_update``: sample the next rollout while the critic updates (not
        before an evaluation, which samples from the same engine, nor after the last step)."""
        step, interval = self.step + 1, self.cfg.eval.interval
        ahead = self.rollouts is not None and self.overlap
        if not ahead or step >= self.total_steps or (interval > 0 and step % interval == 0):
            return
        self.rollouts.sample_ahead()

    def sample_ahead(self, timer: Timer) -> None:
        """``rollout.max_staleness k``: the engine takes the actor's weights (where it has older
        ones), and the rollouts of the next k steps start, sampled while this one trains."""
        k = self.cfg.rollout.max_staleness
        if k == 0 or self.rollouts is None:
            return
        with timer("weight_sync"):
            self.rollouts.sync_ahead(self.learner.actor_model, self.step)
        self.rollouts.fill_ahead(self.step + 1, min(self.step + k, self.total_steps - 1))

    def shape_rewards(self, batch: TensorDict) -> dict[str, float]:
        """DAPO's overlong handling of the env's rewards (``reward.overlong_penalty``,
        ``reward.overlong_filter``; off, as ORZ): the penalty into ``episode_reward``, truncated
        responses out of the loss mask."""
        rw, limit = self.cfg.reward, self.cfg.rollout.response_tokens
        return shape_overlong(
            batch, limit=limit, penalty=rw.overlong_penalty, mask_truncated=rw.overlong_filter
        )

    def evaluate_old_policy_and_values(self, batch: TensorDict, timer: Timer) -> None:
        """PPO's old log-probs (the trainer's actor's, as ORZ's), the critic's V_old and, with a KL
        term, the reference's log-probs (:meth:`PPOLearner.score`)."""
        self.learner.score(batch, timer, self.model_clock)

    def assign_advantages(self, batch: TensorDict, timer: Timer) -> None:
        """Advantages by ``ppo.advantage``: ORZ's GAE from the critic's values, or a critic-free one."""
        p, g = self.cfg.ppo, self.cfg.rollout.samples_per_prompt
        with timer("advantages"):
            args = dict(group_size=g, normalize=p.normalize_advantages, reward_clip=p.reward_clip)
            penalty = (p.kl_coef, p.kl_estimator) if p.uses_reference and p.kl_in == "reward" else None
            estimate_advantages(batch, p.advantage, self.learner.gae, **args, kl_penalty=penalty)

    def update_policy(self, buffer: ReplayBuffer, timer: Timer) -> dict[str, float]:
        """ORZ: one actor step per rollout; and how far the engine was from the trainer (``rollout/``)."""
        ppo, steps = self.learner, self.cfg.ppo.policy_steps_per_rollout
        with timer("policy_update"):
            out = self._optimise(buffer, ppo.policy_loss, ppo.actor_optim, ppo.actor_sched, steps)
        actor = {f"actor/{k}": v for k, v in out.items()} | {"actor/lr": ppo.actor_sched.get_last_lr()[0]}
        return actor | ppo.policy_loss.mismatch.take(self.dist)

    def update_critic(self, buffer: ReplayBuffer, timer: Timer) -> dict[str, float]:
        """ORZ: 12 critic mini-batch steps per rollout (``critic_steps_per_rollout``)."""
        ppo, steps = self.learner, self.cfg.ppo.critic_steps_per_rollout
        with timer("critic_update"):
            out = self._optimise(buffer, ppo.value_loss, ppo.critic_optim, ppo.critic_sched, steps)
        return {f"critic/{k}": v for k, v in out.items()} | {"critic/lr": ppo.critic_sched.get_last_lr()[0]}

    def _optimise(self, buffer: ReplayBuffer, loss, optim, sched, steps: int) -> dict[str, float]:
        clocked = dict(dist=self.dist, clock=self.model_clock)
        return optimise(loss, buffer, optim, sched, steps=steps, ppo=self.cfg.ppo, **clocked)

    def sync_weights(self, timer: Timer) -> None:
        """The updated actor's weights into the generation engine before the next rollout."""
        with timer("weight_sync"):
            # An engine of its own (known on every rank; the engines are rank 0's), or the actor's
            # copy that samples while it trains (rollout.max_staleness).
            if self.backend == "vllm" or self.cfg.rollout.max_staleness > 0:
                # Sharded under torchrun: gathered whole, onto rank 0 (a collective).
                model = self.learner.actor_model
                weights = self.dist.full_state_dict(model) if self.dist.active else model
                if self.rollouts is not None:
                    self.rollouts.sync_weights(weights)
            elif self.rollouts is not None:
                self.rollouts.collector.increment_version()

    def train_step(self) -> dict[str, float]:
        """One generation step of ORZ: the phases in order."""
        timer, self.model_clock = Timer(), Timer()
        start = time.perf_counter()
        batch, engine_seconds = self.collect(timer)
        self.sample_ahead(timer)
        stale = self.cfg.rollout.max_staleness
        shaping = self.shape_rewards(batch) | (staleness_metrics(batch, self.step, stale) if stale else {})
        self.evaluate_old_policy_and_values(batch, timer)
        self.assign_advantages(batch, timer)
        # A generator of the step's own: a rollout sampled meanwhile keeps torch's draws in order
        # (with rollouts ahead, which sample during the whole step, it draws nothing from torch's).
        own = self.cfg.seed * 1_000_003 + self.step if stale else None
        buffer = self.last_buffer = rollout_buffer(batch.exclude(*_TEXT_KEYS), step_generator(own))
        metrics = self.rollout_figures(batch) | shaping
        metrics |= self.update_policy(buffer, timer)
        if not stale:
            self.sync_weights(timer)
            self.start_next_rollout()
        metrics |= self.update_critic(buffer, timer) if self.learner.critic is not None else {}
        timer.seconds["step"] = time.perf_counter() - start
        generated = int(batch.get(keys.RESPONSE_LENGTH).sum())
        metrics |= throughput_metrics(timer, self.model_clock, generated, batch.shape[0])
        engine = self.rollouts.generation.memory_metrics() if self.rollouts is not None else {}
        return (
            metrics | step_time_metrics(timer, self.model_clock, engine_seconds) | memory_metrics() | engine
        )

    def rollout_figures(self, batch: TensorDict) -> dict[str, float]:
        """The batch's figures; on rank 0 (which holds the texts, and alone logs) also the rollout's
        and the env's, and the step's prompts and two of its responses go to the run log."""
        metrics = batch_metrics(batch)
        if self.rollouts is not None:
            figures, prompt_ids = self.rollouts.figures(batch, self.step + 1, self.learner.pack_tokens)
            self.prompt_log.append(prompt_ids)
            metrics |= figures
        return metrics

    def state(self) -> dict:
        """Everything beyond the two models that the next step depends on (``orz_rl.runtime.checkpoint``)."""
        ahead = self.rollouts.ahead if self.rollouts is not None else None
        saved = {}
        if ahead is not None and self.cfg.rollout.max_staleness > 0:  # rollouts in flight, saved
            saved["rollouts_ahead"] = ahead.settle()
        draws = (ahead.before if ahead else None) or self._draw_state()  # before one sampled ahead
        saved |= {"step": self.step, **draws, "history": self.history, "prompt_log": self.prompt_log}
        return self.learner.state_dict() | saved | {"config": jsonable(asdict(self.cfg))}

    def _draw_state(self) -> dict:
        """Where the random draws and the prompt sampler stand now (``rng``, ``sampler``)."""
        return draw_state(self.rollouts.sampler if self.rollouts is not None else None)

    def _restore(self, state: dict) -> None:
        self.step = state["step"]
        self.learner.load_state_dict(state)
        self.history = list(state["history"])
        self.prompt_log = list(state["prompt_log"])
        for _ in range(self.step if self.rollouts is not None else 0):
            self.rollouts.collector.increment_version()  # one update per step so far: versions continue
        print(f"orz-rl: resuming from {self.checkpoint} (step {self.step} of {self.total_steps})")

    def save(self, tag: str) -> Path:
        """A complete checkpoint under ``run_dir/checkpoints/tag`` (atomic; ``keep_last`` retained);
        under torchrun every rank takes part (sharded weights and optimiser states gathered)."""
        path = self.cfg.run_dir / "checkpoints" / tag
        if self._saved[0] == self.step:  # "final" right after "step_N": the same state, its files linked
            return ckpt.link_checkpoint(self._saved[1], path) if self.dist.is_main else path
        models = {"actor": self.learner.actor_model, "critic": self.learner.critic}
        models["reference"] = self.learner.reference  # frozen, saved so that a resume needs no other copy
        # Sharded, each is gathered whole onto rank 0 (a collective on every rank).
        whole = self.dist.active
        states = {k: self.dist.full_state_dict(m) for k, m in models.items() if m is not None and whole}
        state = self.state()
        if self.dist.is_main:
            ckpt.save_checkpoint(path, self.tokenizer, state, models, states)
            ckpt.prune_checkpoints(self.cfg.run_dir, self.cfg.keep_last)
        self._saved = (self.step, path)
        return path

    def train(self) -> list[dict[str, float]]:
        """Train to ``total_steps``; returns the metrics of the steps this call ran.

        SIGINT or SIGTERM ends the run after the step in progress, with a checkpoint
        to resume from; a second SIGINT stops at once, without one.
        """
        from tqdm import tqdm

        cfg, main, history = self.cfg, self.dist.is_main, []
        started = time.monotonic()
        shown = cfg.progress and main
        bar = tqdm(total=self.total_steps, initial=self.step, desc="orz-rl", disable=not shown)
        stop = StopRequest()
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
                        metrics |= self.rollouts.evaluate(self.learner.actor_model, self.step)
                        metrics["time/eval"] = time.perf_counter() - start
                    if main:
                        self.rollouts.log.log(self.step, metrics)
                        bar.update(1)
                        bar.set_postfix({k: f"{metrics[m]:.4g}" for k, m in _BAR.items() if m in metrics})
                    self.history.append(metrics)
                    history.append(metrics)
                    if cfg.save_interval > 0 and self.step % cfg.save_interval == 0:
                        self.save(f"step_{self.step}")
                    late = cfg.max_minutes > 0 and time.monotonic() - started > cfg.max_minutes * 60
                    reached = reward_target_reached(self.history, cfg.stop_at_reward) if main else None
                    if reached:
                        print(f"orz-rl: step {self.step}: {reached}")
                    if self.dist.any(late or reached is not None):
                        break
        finally:
            bar.close()
            if main:
                self.rollouts.close()
        self.save("final")
        return history
