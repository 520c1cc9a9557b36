"""A multi-turn text environment: the model calls a Python tool, runs in the sandbox, between turns.

Any task's single-turn env (a :class:`~orz_rl.envs.rule_reward.RuleRewardEnv`: math, code,
countdown, one's own) becomes multi-turn under :class:`PythonToolEnv`. A turn that ends on
``</code>`` is a tool call: the last ``<code>...</code>`` block runs in the sandbox (its own
time, memory and output limits), and its output, as ``<output>...</output>`` tokenised once and
cut to ``tool.max_output_tokens``, is appended; the model's next turn continues from exactly
those tokens. Any other turn ends the trajectory, and the task's rule grades the model's own
text, its turns joined: a tool's output is read by the model but is never its answer (a
program printing ``\\boxed{..}`` or a code block earns nothing).

Token in, token out: the observation is ``("tokens", "prompt")``, every id so far (the prompt
as tokenised at reset, then the model's sampled ids and the tool's, appended as they came);
nothing is re-tokenised. So the policy runs in ``input_mode="tokens"``. Each step also writes
``("tokens", "tool")``, the tool's ids it appended, for the collector to mark as not trained on.

A call can start before its step: the collector hands each turn to :meth:`PythonToolEnv.on_response`
as soon as the engine has sampled it, while the turn's other trajectories still generate.

Budgets (:class:`~orz_rl.config.ToolConfig`): turns, tokens after the prompt (after a tool call
there must be room for a whole turn of ``turn_tokens``), tool seconds; a trajectory over one
ends with reward 0, as ORZ scores a response cut by the length limit. Its step metrics are the
task env's, and ``tool/<name>`` of :data:`STAT_NAMES` summed over the rollout.

TorchRL's ``ChatEnv`` and its tool transforms (``PythonInterpreter``, ``ExecuteToolsInOrder``)
work on chat histories, rendered with a chat template and tokenised again at each turn: a base
model with ORZ's plain template has no chat template, token-in/token-out needs the ids as
sampled, and TorchRL's interpreter runs code in an unisolated subprocess. So this is an
``EnvBase`` of its own, with the sandbox as its tool.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import torch
from tensordict import NonTensorStack, TensorDict, TensorDictBase, lazy_stack
from torchrl.data import Bounded, Composite, NonTensor, Unbounded
from torchrl.envs import EnvBase

from orz_rl import keys
from orz_rl.config import ToolConfig
from orz_rl.envs.rule_reward import RuleRewardEnv
from orz_rl.problems.prompts import as_strings, finish_reasons, render_tool_output, with_tool_instruction
from orz_rl.rewards.sandbox import RunResult, Sandbox

_CODE = re.compile(r"<code>(.*?)</code>\s*$", re.DOTALL)
#: Counted per step (``last_tool_stats``): turns, tool calls, those that failed, tool seconds,
#: those of them that ran before the step (under other trajectories' generation), tool tokens
#: appended, trajectories ended by a budget.
STAT_NAMES = ("turns", "calls", "errors", "seconds", "seconds_hidden", "output_tokens", "ended_by_budget")


def tool_call(response: str) -> str | None:
    """The program of a turn that ends on a code block, else ``None`` (a final turn)."""
    match = _CODE.search(response)
    return match.group(1).strip("\n") if match else None


def tool_output(result: RunResult) -> str:
    """What the model reads back: the program's stdout, or its error's last line."""
    if result.status == "ok":
        text = result.stdout.decode("utf-8", "replace")
    else:
        lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
        text = f"{result.status}: {lines[-1]}" if lines else result.status
    return render_tool_output(text)


class PythonToolEnv(EnvBase):
    """The multi-turn form of ``task_env``'s task, with a Python tool in ``sandbox``.

    Args:
        task_env: the task's single-turn env: its prompts, problems and rule.
        tokenizer: the policy's tokenizer: the prompt and each tool output are tokenised once.
        sandbox: where tool calls run (each with ``tool.seconds``, the sandbox's other limits).
        tool: the budgets.
        turn_tokens: the most tokens one turn may sample (the policy's ``max_new_tokens``).
    """

    batch_locked = True

    def __init__(
        self, task_env: RuleRewardEnv, tokenizer: Any, sandbox: Sandbox, tool: ToolConfig, turn_tokens: int
    ) -> None:
        super().__init__(batch_size=task_env.batch_size)
        self.task_env, self.tokenizer, self.sandbox, self.tool = task_env, tokenizer, sandbox, tool
        self.turn_tokens = turn_tokens
        self.last_tool_stats: dict[str, float] = dict.fromkeys(STAT_NAMES, 0.0)
        shape = self.batch_size
        self.observation_spec = Composite(
            tokens=Composite(prompt=NonTensor(example_data=torch.zeros(1), shape=shape), shape=shape),
            **{
                keys.PROMPT_ID: Unbounded(shape=shape, dtype=torch.int64),
                keys.ANSWER: NonTensor(example_data="", shape=shape),
            },
            shape=shape,
        )
        self.action_spec = Composite(
            tokens=Composite(response=NonTensor(example_data=torch.zeros(1), shape=shape), shape=shape),
            shape=shape,
        )
        self.reward_spec = Bounded(low=0.0, high=1.0, shape=(*shape, 1), dtype=torch.float32)
        self._state: list[dict[str, Any]] = []
        self._score_seconds = 0.0
        # Calls started by on_response, by trajectory: the turn's ids and the running call.
        self._early: dict[int, tuple[list[int], Future]] = {}
        self._pool: ThreadPoolExecutor | None = None

    @property
    def sampler(self):
        """The task env's prompt sampler (what a run checkpoints to resume exactly)."""
        return self.task_env.sampler

    @property
    def last_score_stats(self) -> dict[str, float]:
        """The step metrics: the task env's counts and the tool's (``tool/<name>``)."""
        return self.task_env.last_score_stats | {f"tool/{k}": v for k, v in self.last_tool_stats.items()}

    @property
    def last_score_seconds(self) -> float:
        """Wall-clock seconds the rule took and the steps waited for tool calls over the rollout
        (the collector's scoring time; ``tool/seconds`` sums the calls, which run in parallel, and
        ``tool/seconds_hidden`` those that ran before their step, under the generation)."""
        return self._score_seconds

    def on_response(self, i: int, ids: torch.Tensor) -> None:
        """Trajectory ``i``'s turn ``ids``, as soon as the engine has sampled it and before the
        step: a tool call starts in the sandbox now, while other trajectories still generate; the
        step takes its result if the turn it receives is these ids (else it runs its own call)."""
        state = self._state[i]
        if state["done"] or state["turns"] + 1 >= self.tool.max_turns:
            return
        program = tool_call(self.tokenizer.decode(ids.tolist(), skip_special_tokens=False))
        if program is not None:
            self._early[i] = (ids.tolist(), self._workers().submit(self._run, program))

    def _workers(self) -> ThreadPoolExecutor:
        """The threads that wait on the sandbox's calls (one per sandbox worker)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.sandbox.workers, thread_name_prefix="tool")
        return self._pool

    def close(self, *, raise_if_closed: bool = True) -> None:
        """Wait for any call still running, then close."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        super().close(raise_if_closed=raise_if_closed)

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        self._settle_early()
        base = self.task_env.reset()
        prompts = as_strings(base.get(("text", "prompt")))
        if self.tool.instruction:
            prompts = [with_tool_instruction(p) for p in prompts]
            base.set(("text", "prompt"), NonTensorStack(*prompts))
        ids = [torch.tensor(self.tokenizer(p)["input_ids"], dtype=torch.int64) for p in prompts]
        self._state = [
            {"prompt_len": len(i), "texts": [], "turns": 0, "tool_seconds": 0.0, "done": False} for i in ids
        ]
        self.last_tool_stats = dict.fromkeys(STAT_NAMES, 0.0)
        self._score_seconds = 0.0
        return self._observation(ids, base, torch.zeros(len(ids), dtype=torch.bool))

    def _observation(
        self,
        ids: list[torch.Tensor],
        base: TensorDictBase,
        done: torch.Tensor,
        tool_ids: list[torch.Tensor] | None = None,
    ) -> TensorDictBase:
        # Row by row: the rows' ids differ in length (a lazy stack cannot set a ragged key whole).
        rows = [{("tokens", "prompt"): i} for i in ids]
        for row, tool in zip(rows, tool_ids or [], strict=False):
            row["tokens", "tool"] = tool
        out = lazy_stack([TensorDict(row) for row in rows])
        out.set(keys.PROMPT_ID, base.get(keys.PROMPT_ID))
        out.set(keys.ANSWER, base.get(keys.ANSWER))
        out.set(("text", "prompt"), base.get(("text", "prompt")))
        out.set("done", done.unsqueeze(-1))
        out.set("terminated", done.unsqueeze(-1).clone())
        return out

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        prefix = tensordict.get(("tokens", "prompt"), as_list=True)
        responses = tensordict.get(("tokens", "response"), as_list=True)
        n = len(prefix)
        reward = torch.zeros(n)
        stopped = torch.zeros(n, dtype=torch.bool)
        tool_ids = [torch.zeros(0, dtype=torch.int64) for _ in range(n)]
        calls, finals = {}, []
        live = [i for i in range(n) if not self._state[i]["done"]]
        texts = self.tokenizer.batch_decode([responses[i].tolist() for i in live], skip_special_tokens=False)
        turn_texts = [""] * n
        for i, text in zip(live, texts, strict=True):
            turn_texts[i] = text
        reasons = finish_reasons(tensordict, turn_texts, self.task_env.stop_strings)
        for i, text in zip(live, texts, strict=True):
            state = self._state[i]
            state["texts"].append(text)
            state["turns"] += 1
            self.last_tool_stats["turns"] += 1
            program = tool_call(text)
            if program is None:
                finals.append(i)
            elif state["turns"] >= self.tool.max_turns:
                self._end_by_budget(i)
            else:
                calls[i] = program
        self._score(finals, [reasons[i] == "stop" for i in finals], reward, stopped, tensordict)
        self._call_tools(calls, tool_ids, responses)
        ids = []
        for i in range(n):
            new = torch.cat([prefix[i].reshape(-1), responses[i].reshape(-1), tool_ids[i]])
            state = self._state[i]
            room = self.tool.max_total_tokens - (len(new) - state["prompt_len"])
            if i in calls and not state["done"] and room < self.turn_tokens:
                self._end_by_budget(i)
            ids.append(new)
        done = torch.tensor([s["done"] for s in self._state])
        out = self._observation(ids, tensordict, done, tool_ids)
        out.set("reward", reward.unsqueeze(-1))
        out.set(keys.STOPPED, stopped)
        return out

    def _end_by_budget(self, i: int) -> None:
        self._state[i]["done"] = True
        self.last_tool_stats["ended_by_budget"] += 1

    def _score(
        self,
        finals: list[int],
        ended: list[bool],
        reward: torch.Tensor,
        stopped: torch.Tensor,
        td: TensorDictBase,
    ) -> None:
        """The task's rule on each finished trajectory's own text (its turns, not the tool's
        outputs); ``ended``: whether its last turn stopped (not cut by the length limit)."""
        if not finals:
            return
        texts = ["".join(self._state[i]["texts"]) for i in finals]
        prompt_ids = td.get(keys.PROMPT_ID).tolist()
        problems = [self.task_env.problems[prompt_ids[i]] for i in finals]
        start = time.perf_counter()
        scores = self.task_env.score(texts, torch.tensor(ended), problems).to(torch.float32)
        self._score_seconds += time.perf_counter() - start
        for k, i in enumerate(finals):
            reward[i], stopped[i] = scores[k], ended[k]
            self._state[i]["done"] = True

    def _call_tools(
        self, calls: dict[int, str], tool_ids: list[torch.Tensor], responses: list[torch.Tensor]
    ) -> None:
        """Every call of this step, in parallel over the sandbox's workers (those :meth:`on_response`
        started for exactly this turn are already running); append each output."""
        stats = self.last_tool_stats
        start = time.perf_counter()
        futures = {}
        for i, program in calls.items():
            early = self._early.pop(i, None)
            same = early is not None and early[0] == responses[i].reshape(-1).tolist()
            futures[i] = early[1] if same else self._workers().submit(self._run, program)
        self._settle_early()
        results = {i: future.result() for i, future in futures.items()}
        # Scoring time: what the step waited for, not the calls' time under the generation.
        self._score_seconds += time.perf_counter() - start
        for i, (result, began, ended) in results.items():
            seconds = ended - began
            stats["seconds_hidden"] += max(0.0, min(ended, start) - began)
            state = self._state[i]
            state["tool_seconds"] += seconds
            output = tool_output(result)
            ids = self.tokenizer(output, add_special_tokens=False)["input_ids"][: self.tool.max_output_tokens]
            tool_ids[i] = torch.tensor(ids, dtype=torch.int64)
            stats["calls"] += 1
            stats["errors"] += result.status != "ok"
            stats["seconds"] += seconds
            stats["output_tokens"] += len(ids)
            if state["tool_seconds"] > self.tool.max_tool_seconds:
                self._end_by_budget(i)

    def _settle_early(self) -> None:
        """Wait for the early calls no step took (a turn received other than it was sampled):
        nothing of a call outlives its step."""
        wait([future for _, future in self._early.values()])
        self._early.clear()

    def _run(self, program: str) -> tuple[RunResult, float, float]:
        """A call's result, and when it began and ended (``time.perf_counter``)."""
        began = time.perf_counter()
        result = self.sandbox.run(program, seconds=self.tool.seconds)
        return result, began, time.perf_counter()

    def _set_seed(self, seed: int | None) -> None:
        self.task_env.set_seed(seed)


def with_python_tool(
    task_env: EnvBase, tokenizer: Any, sandbox: Sandbox, tool: ToolConfig, turn_tokens: int
) -> PythonToolEnv:
    """A task's env with the tool (``--rollout.tools python``, ``orz-rl eval --tools python``); a
    task env that is not rule-rewarded (a :class:`RuleRewardEnv`, whose prompts, problems and rule
    the tool env reads) is a ``ValueError`` naming it: one line from the CLI, before any model loads."""
    if not isinstance(task_env, RuleRewardEnv):
        raise ValueError(
            f"the Python tool (tools python) runs on a task whose env is a RuleRewardEnv; "
            f"{type(task_env).__name__} is not one"
        )
    return PythonToolEnv(task_env, tokenizer, sandbox, tool, turn_tokens)
