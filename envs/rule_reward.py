"""A single-turn text environment whose reward is a rule.

Reset draws the next prompts from a dataset, renders them, and repeats each
one ``samples_per_prompt`` times (the samples of a prompt stay adjacent). The
policy (TorchRL's ``TransformersWrapper`` or ``vLLMWrapper`` in ``"text"``
mode) writes ``("text", "response")``, and vLLM also a ``finish_reason``; step
scores each response with :meth:`RuleRewardEnv.score` and ends the episode.
Subclasses supply :meth:`render` and :meth:`score`; ``envs/math.py`` is one.

It keeps the contract of :mod:`orz_rl.rollout.collector` and writes every optional key
(``stopped``, ``prompt_id``, ``answer``); its ``sampler`` is what a run checkpoints to
resume exactly, and ``last_score_stats`` what the step metrics report.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch
from tensordict import NonTensorStack, TensorDict, TensorDictBase
from torchrl.data import Bounded, Composite, NonTensor, Unbounded
from torchrl.envs import EnvBase

from orz_rl import keys
from orz_rl.problems.prompts import STOP_STRINGS, as_strings, finish_reasons
from orz_rl.problems.sampler import PromptSampler


class RuleRewardEnv(EnvBase):
    """Base class of orz-rl's rule-rewarded text tasks.

    Args:
        problems: the dataset: objects with ``question`` and ``answer`` strings
            (:class:`~orz_rl.problems.problem.Problem`, or a task's own type).
        prompts_per_step: distinct prompts drawn at each reset.
        samples_per_prompt: responses sampled per prompt (ORZ: 64).
        seed: seed of the prompt order; each pass over the data is a new permutation.
        stop_strings: a response that ends on one of these has stopped; any other
            was cut by the length limit and earns 0.
        bos: the tokenizer's BOS text, prepended by templates that ask for it.
        eos: the tokenizer's EOS text; a response ending on it also stopped (not cut).
    """

    batch_locked = True

    def __init__(
        self,
        problems: Sequence[Any],
        *,
        prompts_per_step: int,
        samples_per_prompt: int,
        seed: int = 0,
        stop_strings: Sequence[str] = STOP_STRINGS,
        bos: str | None = None,
        eos: str | None = None,
    ) -> None:
        size = prompts_per_step * samples_per_prompt
        super().__init__(batch_size=torch.Size([size]))
        self.problems = list(problems)
        self.prompts_per_step = prompts_per_step
        self.samples_per_prompt = samples_per_prompt
        self.sampler = PromptSampler(self.problems, seed)
        self.stop_strings = tuple(stop_strings) + ((eos,) if eos else ())
        self.last_score_seconds = 0.0
        #: Counts a subclass's :meth:`score` may report for the step metrics (e.g. checker timeouts).
        self.last_score_stats: dict[str, int] = {}
        self.bos = bos
        shape = self.batch_size
        self.observation_spec = Composite(
            text=Composite(prompt=NonTensor(example_data="", shape=shape), shape=shape),
            **{
                keys.PROMPT_ID: Unbounded(shape=shape, dtype=torch.int64),
                keys.ANSWER: NonTensor(example_data="", shape=shape),
            },
            shape=shape,
        )
        self.action_spec = Composite(
            text=Composite(response=NonTensor(example_data="", shape=shape), shape=shape),
            shape=shape,
        )
        # The reward is the rule's verdict: 0 or 1 for every orz-rl task.
        self.reward_spec = Bounded(low=0.0, high=1.0, shape=(*shape, 1), dtype=torch.float32)

    def render(self, problem: Any) -> str:
        """The prompt text of ``problem``."""
        raise NotImplementedError

    def score(self, responses: list[str], stopped: torch.Tensor, problems: list[Any]) -> torch.Tensor:
        """Reward of each response, a float tensor of shape ``[len(responses)]``; ``stopped`` is
        False where the length limit cut the response (ORZ: reward 0)."""
        raise NotImplementedError

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        drawn = self.sampler.next_batch(self.prompts_per_step)
        n = self.samples_per_prompt
        ids = torch.tensor([i for i, _ in drawn for _ in range(n)], dtype=torch.int64)
        prompts = [self.render(p) for _, p in drawn for _ in range(n)]
        answers = [p.answer for _, p in drawn for _ in range(n)]
        out = TensorDict(batch_size=self.batch_size)
        out.set(("text", "prompt"), NonTensorStack(*prompts))
        out.set(keys.PROMPT_ID, ids)
        out.set(keys.ANSWER, NonTensorStack(*answers))
        out.set("done", torch.zeros(*self.batch_size, 1, dtype=torch.bool))
        out.set("terminated", torch.zeros(*self.batch_size, 1, dtype=torch.bool))
        return out

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        responses = as_strings(tensordict.get(("text", "response")))
        prompt_ids = tensordict.get(keys.PROMPT_ID).tolist()
        problems = [self.problems[i] for i in prompt_ids]
        stopped = torch.tensor(
            [r == "stop" for r in finish_reasons(tensordict, responses, self.stop_strings)]
        )
        start = time.perf_counter()
        reward = self.score(responses, stopped, problems).to(torch.float32)
        self.last_score_seconds = time.perf_counter() - start
        done = torch.ones(*self.batch_size, 1, dtype=torch.bool)
        out = TensorDict(batch_size=self.batch_size)
        out.set("reward", reward.unsqueeze(-1))
        out.set("done", done)
        out.set("terminated", done.clone())
        out.set(keys.STOPPED, stopped)
        # Single-turn: the next observation is the same prompt (the env resets after).
        out.set(("text", "prompt"), tensordict.get(("text", "prompt")))
        out.set(keys.PROMPT_ID, tensordict.get(keys.PROMPT_ID))
        out.set(keys.ANSWER, tensordict.get(keys.ANSWER))
        return out

    def _set_seed(self, seed: int | None) -> None:
        if seed is not None:
            self.sampler = PromptSampler(self.problems, seed)
