"""Tool calls overlapped with generation: a multi-turn rollout with and without early responses.

    python bench/tool_overlap.py [--rounds 5] [--latencies 0 0.25] [--workers 0] [--model PATH]

``cpu-tools``' rollouts (its tiny model, its tool budgets, 16 prompts x 8 samples of products)
from an in-process vLLM engine, token in and token out. In the ``early`` arm the engine hands
each turn over as its request finishes and the env starts its tool call at once, while the
turn's other trajectories still generate
(:class:`~orz_rl.rollout.multi_turn.MultiTurnCollector`'s default); in the ``step`` arm the calls
start once the whole turn is sampled (``early_responses=False``), as before. Same engine, env and
sandbox; the arms alternate, ``--rounds`` rollouts each, after one warm-up rollout each. Both arms
of a round draw the same: the same problems (the env reseeded) and, for each request, vLLM's
sampler seeded by the round, the turn and the request's place (:class:`SeededDraws`), so that
they make the same calls and differ only in when the calls start.

``--latencies``: seconds each tool call waits before it runs, for a tool that waits rather than
computes (a remote service, a slow start); 0 is the sandbox alone. On a 2-core machine the
sandbox's processes and the engine share the cores, so only waiting can be hidden here.

Printed per latency: the median rollout seconds of each arm, their ratio (early / step), the tool
calls per rollout and ``tool/seconds_hidden``, the call seconds that ran under generation.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import torch
import tyro

from orz_rl.config import AT_LEAST_0, AT_LEAST_1, SandboxConfig, bound_problems, raise_if_any
from orz_rl.envs.math import MathEnv
from orz_rl.envs.python_tool import PythonToolEnv
from orz_rl.models.loading import load_tokenizer
from orz_rl.models.tiny import build, tiny_config_for
from orz_rl.problems.problem import Problem
from orz_rl.problems.prompts import TOOL_STOP_STRINGS
from orz_rl.problems.toy_task import product_problems
from orz_rl.recipes.cpu_default import CPU_TOOLS
from orz_rl.rewards.sandbox import RunResult, Sandbox
from orz_rl.rollout.engines import make_vllm_engine
from orz_rl.rollout.multi_turn import MultiTurnCollector
from orz_rl.rollout.policies import Sampling, make_vllm_policy


@dataclass(frozen=True)
class Args:
    """What to run."""

    rounds: Annotated[int, AT_LEAST_1] = 5
    """Timed rollouts of each arm per latency (after one warm-up rollout each)."""
    latencies: Annotated[tuple[float, ...], AT_LEAST_0] = (0.0, 0.25)
    """Seconds each tool call waits before it runs (0: the sandbox alone)."""
    model: str = CPU_TOOLS.model.path
    """The model (``cpu-tools``' tiny model, built there if missing, or a run's checkpoint)."""
    workers: Annotated[int, AT_LEAST_0] = 0
    """Sandbox workers, the calls that run at once (0: one per CPU core; a waiting tool can
    have more)."""
    seed: int = 0
    """Seed of the engine and of the problems."""


class WaitingSandbox:
    """The sandbox, with each call waiting ``latency`` seconds first (the model of a tool that
    waits); everything else is the sandbox's."""

    def __init__(self, sandbox: Sandbox, latency: float) -> None:
        self.sandbox, self.latency, self.workers = sandbox, latency, sandbox.workers

    def run(self, source: str, stdin: bytes | str = b"", seconds: float | None = None) -> RunResult:
        time.sleep(self.latency)
        return self.sandbox.run(source, stdin=stdin, seconds=seconds)


class SeededDraws:
    """The engine, each request's sampling seeded by ``round``, the turn (its call in the
    rollout) and its place in the call: two rollouts of one round draw alike."""

    def __init__(self, llm) -> None:
        self.llm, self.llm_engine, self.round, self.turn = llm, llm.llm_engine, 0, 0

    def _seeded(self, prompts: list, params) -> list:
        self.turn += 1
        base = (self.round * 100 + self.turn) * 10_000
        return [_with_seed(params, base + k) for k in range(len(prompts))]

    def enqueue(self, prompts: list, params, use_tqdm: bool = False) -> list[str]:
        return self.llm.enqueue(prompts, self._seeded(prompts, params), use_tqdm=use_tqdm)

    def generate(self, prompts: list, sampling_params, use_tqdm: bool = False) -> list:
        return self.llm.generate(prompts, self._seeded(prompts, sampling_params), use_tqdm=use_tqdm)


def _with_seed(params, seed: int):
    seeded = params.clone()
    seeded.seed = seed
    return seeded


def rollout_seconds(collector: MultiTurnCollector, draws: SeededDraws, k: int) -> tuple[float, dict]:
    """One rollout of round ``k``: its seconds and its tool stats."""
    collector.env.set_seed(k)
    draws.round, draws.turn = k, 0
    start = time.perf_counter()
    collector.multi_turn_rollout()
    return time.perf_counter() - start, dict(collector.env.last_tool_stats)


def main(args: Args) -> None:
    raise_if_any(bound_problems(args))  # before a model is built or an engine starts
    if not Path(args.model).exists():
        build(tiny_config_for(CPU_TOOLS.model, Path(args.model)))
    r = CPU_TOOLS.rollout
    tokenizer = load_tokenizer(args.model)
    llm = make_vllm_engine(args.model, dtype=CPU_TOOLS.model.dtype, seed=args.seed, max_model_len=r.seq_len)
    policy = make_vllm_policy(
        llm, tokenizer, Sampling(r.max_new_tokens, stop_strings=TOOL_STOP_STRINGS), input_mode="tokens"
    )
    policy.model = draws = SeededDraws(llm)
    problems = [Problem(question=q, answer=a) for q, a in product_problems(seed=args.seed, count=256)]
    print(f"{args.model}: {r.prompts_per_step} prompts x {r.samples_per_prompt} samples per rollout")
    print(f"{'latency':>7} {'arm':>5} {'median s':>9} {'calls':>6} {'hidden s':>9}")
    with Sandbox(SandboxConfig(workers=args.workers), announce=False) as sandbox:
        for latency in args.latencies:
            per_step = dict(prompts_per_step=r.prompts_per_step, samples_per_prompt=r.samples_per_prompt)
            task = MathEnv(problems, **per_step)
            env = PythonToolEnv(task, tokenizer, WaitingSandbox(sandbox, latency), r.tool, r.max_new_tokens)
            arms = {
                "early": MultiTurnCollector(env, policy=policy),
                "step": MultiTurnCollector(env, policy=policy, early_responses=False),
            }
            seconds: dict[str, list[float]] = {arm: [] for arm in arms}
            stats: dict[str, list[dict[str, float]]] = {arm: [] for arm in arms}
            for collector in arms.values():
                rollout_seconds(collector, draws, args.rounds)
            for k in range(args.rounds):
                for arm in sorted(arms, reverse=bool(k % 2)):  # alternate which goes first
                    took, tool = rollout_seconds(arms[arm], draws, k)
                    seconds[arm].append(took)
                    stats[arm].append(tool)
            median = {arm: statistics.median(s) for arm, s in seconds.items()}
            for arm in arms:
                calls = statistics.mean(s["calls"] for s in stats[arm])
                hidden = statistics.mean(s["seconds_hidden"] for s in stats[arm])
                print(f"{latency:7.2f} {arm:>5} {median[arm]:9.2f} {calls:6.1f} {hidden:9.2f}")
            print(f"{latency:7.2f} ratio early/step: {median['early'] / median['step']:.2f}x")
            env.close()


if __name__ == "__main__":
    torch.manual_seed(0)
    main(tyro.cli(Args))
