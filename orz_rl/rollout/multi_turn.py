"""Multi-turn rollouts: every live trajectory's next turn in one policy call, until all are done.

:class:`MultiTurnCollector` is :class:`~orz_rl.rollout.collector.SingleTurnCollector` for an
env whose episodes take several steps, token in and token out
(:class:`orz_rl.envs.python_tool.PythonToolEnv` is one). Its env keeps this contract:

====================================  ========  ==============================================
key                                   written   meaning
====================================  ========  ==============================================
``("tokens", "prompt")``              reset,    every id so far: the policy's input
                                      step
``("tokens", "tool")``                step      the ids the env appended after the turn (a
                                                tool's output; empty for none)
``("next", "reward")``                step      the trajectory's reward, at the step it ends
``("next", "done")``                  step      True once the trajectory has ended
``("next", "stopped")``               step      optional, as for a single turn
====================================  ========  ==============================================

An env may also have ``on_response(i, ids)``: each live trajectory's turn as soon as it is
sampled, before the step (the tool env starts its call there). With a policy that has
``streaming`` (:class:`~orz_rl.rollout.policies.vLLMRolloutWrapper` on an in-process engine
hands each response over as it finishes), tool calls run while the turn's other trajectories
still generate.

The policy (``input_mode="tokens"``) runs once per turn on the live trajectories only. A
trajectory's response is its turns and the env's insertions in order: the ids as sampled and
as appended, never re-tokenised, with ``assistant_mask`` True on the sampled ones, whose
log-probs are the engine's (0 on the env's). Each rollout is one ragged TensorDict per
trajectory in the form :class:`~orz_rl.rollout.training_batch.ToTrainingBatch` reads, which
makes the dense batch of :mod:`orz_rl.keys` with its ``assistant_mask``.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from tensordict import NonTensorStack, TensorDict, TensorDictBase, lazy_stack

from orz_rl import keys
from orz_rl.problems.prompts import as_strings
from orz_rl.rollout.collector import SingleTurnCollector
from orz_rl.rollout.training_batch import leaves


class _Trajectories:
    """What the turns of one rollout's trajectories have added so far."""

    def __init__(self, n: int) -> None:
        self.pieces: list[list[tuple[torch.Tensor, torch.Tensor, bool]]] = [[] for _ in range(n)]
        self.reward = torch.zeros(n)
        self.stopped = torch.ones(n, dtype=torch.bool)
        self.reasons = ["stop"] * n
        self.done = torch.zeros(n, dtype=torch.bool)

    def add_turn(self, i: int, ids: torch.Tensor, log_probs: torch.Tensor, reason: str) -> None:
        self.pieces[i].append((ids.reshape(-1), log_probs.reshape(-1).float(), True))
        self.reasons[i] = reason

    def add_insert(self, i: int, ids: torch.Tensor) -> None:
        if ids.numel():
            self.pieces[i].append((ids.reshape(-1), torch.zeros(ids.numel()), False))

    def response(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Trajectory ``i``'s ids, log-probs and assistant mask, concatenated."""
        pieces = self.pieces[i] or [(torch.zeros(0, dtype=torch.int64), torch.zeros(0), True)]
        ids = torch.cat([p[0] for p in pieces])
        log_probs = torch.cat([p[1] for p in pieces])
        sampled = torch.cat([torch.full((p[0].numel(),), p[2]) for p in pieces])
        return ids, log_probs, sampled


class MultiTurnCollector(SingleTurnCollector):
    """TorchRL's ``LLMCollector`` (through :class:`SingleTurnCollector`: iteration, ``postproc``,
    replay buffer, weight updater, policy versions) for multi-turn envs of the contract above.

    Args:
        max_turns: policy calls a rollout may make (every env also ends its episodes itself).
        early_responses: hand each sampled turn to the env's ``on_response`` as it is done (the
            tool calls overlap the turn's generation); False waits for the step (a baseline).
        everything else: :class:`SingleTurnCollector`'s.
    """

    def __init__(self, env, *, policy, max_turns: int = 64, early_responses: bool = True, **kwargs) -> None:
        super().__init__(env, policy=policy, **kwargs)
        self.max_turns = max_turns
        self.early_responses = early_responses

    @property
    def rollout(self):
        """What each iteration calls for its batch: :meth:`multi_turn_rollout`."""
        return self.multi_turn_rollout

    def multi_turn_rollout(self) -> TensorDictBase:
        """One batch of whole trajectories: a reset, then turns until every trajectory is done."""
        td = self.env.reset()
        n = td.batch_size.numel()
        prompts = [t.reshape(-1) for t in td.get(("tokens", "prompt"), as_list=True)]
        start = td.select(keys.PROMPT_ID, keys.ANSWER, ("text", "prompt"), strict=False)
        traj = _Trajectories(n)
        for _ in range(self.max_turns):
            live = (~traj.done).nonzero().squeeze(-1)
            if not live.numel():
                break
            td = self._turn(td, live, traj)
        else:
            if not traj.done.all():
                raise ValueError(
                    f"{type(self.env).__name__} left trajectories running after {self.max_turns} turns"
                )
        return self._output(prompts, start, traj)

    def _turn(self, td: TensorDictBase, live: torch.Tensor, traj: _Trajectories) -> TensorDictBase:
        """The live trajectories' next turn (one policy call), then the env's step; its next state."""
        with self._early(live):
            out = self.policy(td[live])
        responses = out.get(("tokens", "response"), as_list=True)
        log_probs = out.get(("log_probs", "response"), as_list=True)
        reasons = as_strings(out.get(keys.FINISH_REASON)) if keys.FINISH_REASON in out.keys() else None
        n = td.batch_size.numel()
        step_in = td.clone(False)
        sampled = [torch.zeros(0, dtype=torch.int64)] * n
        for k, i in enumerate(live.tolist()):
            sampled[i] = responses[k]
            traj.add_turn(i, responses[k], log_probs[k], reasons[k] if reasons else "stop")
        for i in range(n):
            step_in[i].set(("tokens", "response"), sampled[i])
        if reasons is not None:
            every = ["stop"] * n
            for k, i in enumerate(live.tolist()):
                every[i] = reasons[k]
            step_in.set(keys.FINISH_REASON, NonTensorStack(*every))
        nxt = self.env.step(step_in).get("next")
        inserted = nxt.get(("tokens", "tool"), as_list=True)
        done = nxt.get("done").reshape(n)
        ended = done & ~traj.done
        for i in live.tolist():
            traj.add_insert(i, inserted[i])
        traj.reward = torch.where(ended, nxt.get("reward").reshape(n).float(), traj.reward)
        stopped = nxt.get(keys.STOPPED, None)
        if stopped is not None:
            traj.stopped = torch.where(ended, stopped.reshape(n), traj.stopped)
        traj.done = done.clone()
        return nxt

    def _early(self, live: torch.Tensor):
        """Where the policy hands each turn to the env's ``on_response`` as it is sampled."""
        on_response = getattr(self.env, "on_response", None)
        streaming = getattr(self.policy, "streaming", None)
        if not (self.early_responses and on_response and streaming):
            return nullcontext()
        rows = live.tolist()
        return streaming(lambda k, ids: on_response(rows[k], ids))

    def _output(
        self, prompts: list[torch.Tensor], start: TensorDictBase, traj: _Trajectories
    ) -> TensorDictBase:
        """The rollout as :class:`~orz_rl.rollout.training_batch.ToTrainingBatch` reads it."""
        rows = []
        for i, prompt in enumerate(prompts):
            ids, log_probs, sampled = traj.response(i)
            rows.append(
                TensorDict(
                    {
                        ("tokens", "prompt"): prompt,
                        ("tokens", "response"): ids,
                        ("log_probs", "response"): log_probs,
                        keys.ASSISTANT_MASK: sampled,
                    }
                )
            )
        out = lazy_stack(rows)
        n = len(prompts)
        tokenizer = self.policy.tokenizer
        texts = tokenizer.batch_decode([r.tolist() for r in out.get(("tokens", "response"), as_list=True)])
        out.set(("text", "response"), NonTensorStack(*texts))
        out.set(("text", "prompt"), NonTensorStack(*leaves(as_strings(start.get(("text", "prompt"))))))
        for key in (keys.PROMPT_ID, keys.ANSWER):
            if key in start.keys():
                out.set(key, start.get(key))
        out.set(("next", "reward"), traj.reward.unsqueeze(-1))
        out.set(("next", "done"), torch.ones(n, 1, dtype=torch.bool))
        out.set(("next", keys.STOPPED), traj.stopped)
        out.set(keys.FINISH_REASON, NonTensorStack(*traj.reasons))
        if self.policy_version_tracker is not None:
            out.set(keys.POLICY_VERSION, torch.full((n,), self.policy_version, dtype=torch.int64))
        return out
