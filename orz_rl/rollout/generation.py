"""The run's generation, chosen from its configuration: backend, engine(s), policy, weight updater.

* ``layout.vllm_engines > 0``: that many vLLM engines in Ray actors
  (:class:`~orz_rl.rollout.ray_engines.RayvLLMEngines`), weights pushed through Ray's object store;
* else vLLM in the trainer's process (:func:`~orz_rl.rollout.engines.make_vllm_engine`),
  weights handed over by reference;
* where vLLM does not import (or ``rollout.backend = transformers``): ``generate`` on the
  actor itself, whose weights need no copy (with ``rollout.max_staleness``, on a copy of it,
  which samples while the actor trains).
"""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass
from typing import Any

import torch
from tensordict.nn import TensorDictModuleBase
from torch import nn
from torchrl.collectors import WeightUpdaterBase

from orz_rl.config import EngineBackend, TrainConfig
from orz_rl.problems.prompts import STOP_STRINGS, TOOL_STOP_STRINGS
from orz_rl.rollout.engines import CPU_GENERATE_UP_TO_TOKENS, make_vllm_engine
from orz_rl.rollout.policies import InputMode, Sampling, make_transformers_policy, make_vllm_policy
from orz_rl.rollout.ray_engines import RayEngineUpdater, RayvLLMEngines
from orz_rl.rollout.weight_sync import ModuleCopyUpdater, vLLMInProcessUpdater


@dataclass
class Generation:
    """What samples the rollouts of a run."""

    policy: TensorDictModuleBase
    """The TorchRL policy the collector calls."""
    weight_updater: WeightUpdaterBase | None
    """What pushes the actor's weights to the engine(s) (None: the policy is the actor itself)."""
    llm: Any = None
    """The engine: a ``vllm.LLM``, a :class:`RayvLLMEngines`, or None."""

    def memory_metrics(self) -> dict[str, float]:
        """``system/engine_rss_gib``: the resident memory of engines in processes of their own (Ray
        actors), summed; nothing for an engine inside the trainer (``system/rss_gib`` holds it)."""
        if isinstance(self.llm, RayvLLMEngines):
            return {"system/engine_rss_gib": self.llm.resident_gib()}
        return {}

    def shutdown(self) -> None:
        """Stop engines this run started in other processes (Ray actors)."""
        if isinstance(self.llm, RayvLLMEngines):
            self.llm.shutdown()


def describe_generation(cfg: TrainConfig, backend: EngineBackend, dist=None) -> str:
    """What :func:`start_generation` starts, in a few words, and the training ranks of ``dist`` (a
    :class:`~orz_rl.runtime.distributed.Distributed`) under ``torchrun``."""
    if dist is not None and dist.active:
        over = "NCCL" if dist.device.type == "cuda" else "Gloo"
        ranks = f", {dist.world_size} training ranks (FSDP2 over {over})"
        return describe_generation(cfg, backend) + ranks
    if backend == "transformers":
        why = (
            f" (auto: faster on a CPU up to {CPU_GENERATE_UP_TO_TOKENS} new tokens)"
            if cfg.rollout.backend == "auto"
            else ""
        )
        on = "a copy of the actor" if cfg.rollout.max_staleness > 0 else "the actor"
        return f"transformers generate on {on}{why}"
    engines = cfg.layout.vllm_engines
    return f"{engines} vLLM engine(s) in Ray actors" if engines > 0 else "vLLM in this process"


def start_sampling(
    backend: EngineBackend,
    model_path: str,
    tokenizer,
    model: nn.Module,
    sampling: Sampling,
    input_mode: InputMode = "text",
    **engine_args: Any,
) -> Generation:
    """What samples from one model in this process, with ``sampling``: ``generate`` on ``model``
    (transformers), or a vLLM engine started on ``model_path`` with ``engine_args``
    (:func:`~orz_rl.rollout.engines.make_vllm_engine`'s keywords). A run's generation
    (:func:`start_generation`) and ``orz-rl eval`` both start here."""
    if backend == "transformers":
        return Generation(make_transformers_policy(model, tokenizer, sampling, input_mode), None)
    llm = make_vllm_engine(model_path, **engine_args)
    return Generation(make_vllm_policy(llm, tokenizer, sampling, input_mode), vLLMInProcessUpdater(llm), llm)


def copy_for_sampling(model: nn.Module) -> nn.Module:
    """A frozen copy of ``model`` to sample from while it trains."""
    copy = deepcopy(model)
    copy.requires_grad_(False)
    return copy


def start_generation(
    cfg: TrainConfig,
    backend: EngineBackend,
    model_path: str,
    tokenizer,
    actor_model: nn.Module,
    llm: Any = None,
) -> Generation:
    """Start what samples the run's rollouts from ``model_path`` (the base model or a checkpoint's
    actor). ``llm``: an in-process engine to reuse, into which the actor's weights are loaded."""
    r, layout = cfg.rollout, cfg.layout
    stops = TOOL_STOP_STRINGS if r.tools != "none" else STOP_STRINGS
    sampling = Sampling(r.max_new_tokens, r.temperature, r.top_p, r.top_k, stop_strings=stops)
    # With a tool, token in and token out: each turn continues from the ids as sampled.
    mode: InputMode = "tokens" if r.tools != "none" else "text"
    if backend == "transformers" and r.max_staleness > 0:  # a copy samples while the actor trains
        copy = copy_for_sampling(actor_model)
        policy = start_sampling(backend, model_path, tokenizer, copy, sampling, mode).policy
        return Generation(policy, ModuleCopyUpdater(copy))
    if backend == "transformers":
        return start_sampling(backend, model_path, tokenizer, actor_model, sampling, mode)
    engine_args = dict(
        dtype=cfg.model.dtype,
        seed=cfg.seed,
        max_model_len=r.seq_len,
        gpu_memory_utilization=r.vllm_gpu_memory_utilization,
        cpu_kv_cache_gib=r.vllm_cpu_kv_cache_gib,
    )
    if layout.vllm_engines > 0:
        llm = RayvLLMEngines(
            model_path,
            layout.vllm_engines,
            tensor_parallel=layout.vllm_tensor_parallel,
            ray_address=layout.ray_address,
            **engine_args,
        )
        return Generation(make_vllm_policy(llm, tokenizer, sampling, mode), RayEngineUpdater(llm), llm)
    if llm is not None:
        # A reused engine may hold another run's weights. Pushed straight to the engine, not
        # through the collector: the policy version stays 0.
        updater = vLLMInProcessUpdater(llm)
        updater.push_weights(actor_model)
        return Generation(make_vllm_policy(llm, tokenizer, sampling, mode), updater, llm)
    try:
        return start_sampling(backend, model_path, tokenizer, actor_model, sampling, mode, **engine_args)
    except ValueError as e:  # vLLM's message names its own flags, not the recipe's
        field = (
            f"rollout.vllm_gpu_memory_utilization = {r.vllm_gpu_memory_utilization}"
            if torch.cuda.is_available()
            else f"rollout.vllm_cpu_kv_cache_gib = {r.vllm_cpu_kv_cache_gib}"
        )
        raise ValueError(f"vLLM did not start with {field}: {e}") from None
