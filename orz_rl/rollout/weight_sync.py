"""Weight sync: the trainer's actor weights into the vLLM engine before the next rollout.

:class:`vLLMInProcessUpdater` is a TorchRL weight updater, so the TorchRL idiom
works unchanged::

    collector = make_collector(env, policy, pad_id, weight_updater=vLLMInProcessUpdater(llm))
    ...  # one policy step
    collector.update_policy_weights_(actor_model)  # vLLM now samples from the new weights
    collector.policy_version                         # incremented by the collector

TorchRL's own vLLM updaters broadcast over NCCL process groups, which need a GPU
and a separate engine process. With the in-process engine of
:func:`orz_rl.rollout.engines.make_vllm_engine` the tensors reach vLLM's model loader
by reference through ``collective_rpc("reload_weights")``: the same call on a
GPU and on the CPU (calling the model's ``load_weights`` directly fails on the
CPU backend: its parameters have no ``weight_loader``).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping

import torch
from tensordict import TensorDictBase
from torch import nn

# TorchRL 0.14.1 deprecates WeightUpdaterBase in favour of weight-sync schemes, but
# LLMCollector accepts only a WeightUpdaterBase (it has no schemes argument).
from torchrl.collectors import WeightUpdaterBase


def _rotary_cache_notice(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("RotaryEmbedding: Failed to load weights")


@functools.cache
def _quiet_reload() -> None:
    # A reload warns "RotaryEmbedding: Failed to load weights" at every push: its cos/sin
    # cache is computed, not in any checkpoint, and vLLM keeps it as it is (correctly).
    # A filter, not a level: vLLM's logging set-up resets the levels of its loggers.
    logging.getLogger("vllm.model_executor.model_loader.reload.layerwise").addFilter(_rotary_cache_notice)


def checkpoint_weights(
    weights: nn.Module | Mapping[str, torch.Tensor] | TensorDictBase | None,
) -> dict[str, torch.Tensor]:
    """``weights`` by Hugging Face checkpoint name ("model.layers.0...", "lm_head.weight"), the
    names vLLM's loaders expect and a transformers model's state dict has, detached.

    Raises:
        TypeError: for anything but a module, a mapping of its weights or a TensorDict of them.
    """
    if isinstance(weights, nn.Module):
        weights = weights.state_dict()
    elif isinstance(weights, TensorDictBase):
        weights = {".".join(k): v for k, v in weights.items(True, True)}
    if not isinstance(weights, Mapping):
        raise TypeError(f"expected a causal LM or a mapping of its weights, got {type(weights)}")
    return {name: tensor.detach() for name, tensor in weights.items()}


class CheckpointWeightUpdater(WeightUpdaterBase):
    """A TorchRL weight updater that takes a causal LM, its state dict or a TensorDict of it and
    hands its subclass's ``_sync_weights_with_worker`` the weights by checkpoint name
    (:func:`checkpoint_weights`)."""

    def push_weights(
        self,
        policy_or_weights: nn.Module | Mapping[str, torch.Tensor] | TensorDictBase | None = None,
        worker_ids: int | list[int] | None = None,
    ) -> None:
        """Load ``policy_or_weights`` (a causal LM, its state dict, or a TensorDict of it) into the
        engine(s); ``collector.update_policy_weights_(model)`` calls this."""
        super().push_weights(checkpoint_weights(policy_or_weights), worker_ids)


class vLLMInProcessUpdater(CheckpointWeightUpdater):
    """Pushes a Hugging Face causal LM's weights into an in-process ``vllm.LLM``.

    Args:
        llm: the engine (``vllm.LLM``) that the collector's policy samples from.

    Attributes:
        last_sync_seconds: wall-clock seconds of the latest push (reload and
            prefix-cache reset), for the step metrics.
    """

    def __init__(self, llm) -> None:
        _quiet_reload()
        self.llm = llm
        self.last_sync_seconds = 0.0

    def _sync_weights_with_worker(
        self, *, worker_id: int | None = None, server_weights: dict[str, torch.Tensor]
    ) -> None:
        start = time.perf_counter()
        weights = iter(server_weights.items())
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        # Cached prefixes hold keys/values of the old weights.
        self.llm.reset_prefix_cache()
        self.last_sync_seconds = time.perf_counter() - start


class ModuleCopyUpdater(CheckpointWeightUpdater):
    """Loads the actor's weights into a copy of it that samples while the actor trains
    (transformers' ``generate`` with ``rollout.max_staleness``).

    Args:
        module: the copy the collector's policy samples from.
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def _sync_weights_with_worker(
        self, *, worker_id: int | None = None, server_weights: dict[str, torch.Tensor]
    ) -> None:
        with torch.no_grad():
            self.module.load_state_dict(server_weights)
