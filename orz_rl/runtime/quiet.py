"""Known-harmless start-up noise of orz-rl's dependencies, silenced where it is raised.

Each entry names the message, who raises it, and why a user can do nothing about it. Every
other warning stays: a filter here matches one message of one logger, never a whole level.
Silenced elsewhere, at their own source: the vLLM engine's C++ NUMA notice and its weight
loading bar (:mod:`orz_rl.rollout.engines`), TorchRL's collector notices
(:mod:`orz_rl.rollout.collector`), the critic's expected ``lm_head`` load report
(:mod:`orz_rl.models.loading`), MLflow's artifact download bar (:mod:`orz_rl.runtime.trackers`).
"""

from __future__ import annotations

import logging
import os
import warnings

#: ``(logger, message prefix)`` of vLLM warnings about this machine's set-up, not the run's.
KNOWN_LOG_NOISE: tuple[tuple[str, str], ...] = (
    # vLLM-CPU without triton-cpu: the kernels it would compile are not needed on a CPU.
    ("vllm.triton_utils.importing", "Triton is installed, but doesn't include CPU backend"),
    ("vllm.platforms.cpu", "Triton is not installed. triton-cpu is expected"),
    ("vllm.config.vllm", "Model Runner V2 requires Triton"),
    # orz-rl asks for eager execution on a CPU (make_vllm_engine): this restates it.
    ("vllm.config.vllm", "Enforce eager set, disabling torch.compile"),
    ("vllm.config.vllm", "Inductor compilation was disabled by user settings"),
    # The in-process engine seeds the trainer's RNG on purpose; checkpoints save the state after.
    ("vllm.engine.arg_utils", "The global random seed is set to"),
    # Allocator hints for serving (LD_PRELOAD of tcmalloc and Intel OpenMP), not for a trainer.
    ("vllm.v1.worker.cpu_worker", "%s is not found in LD_PRELOAD"),
    # vLLM's CPU worker makes torch.set_num_threads a no-op in its process, and says so at every
    # call; make_vllm_engine gives the trainer its threads back.
    ("vllm.v1.worker.cpu_worker", "CPU backend doesn't allow to use `torch.set_num_threads`"),
)

#: ``(category, message regex)`` of Python warnings raised inside dependencies.
KNOWN_WARNINGS: tuple[tuple[type[Warning], str], ...] = (
    # vLLM's triton dispatcher touches torch's deprecated alias while scanning a module.
    (FutureWarning, r"`torch\.distributed\.reduce_op` is deprecated"),
    # TorchRL's TransformersWrapper scores its samples with torch's legacy loss arguments.
    (UserWarning, r"size_average and reduce args will be deprecated"),
)


class _DropMessages(logging.Filter):
    def __init__(self, prefixes: list[str]) -> None:
        super().__init__()
        self.prefixes = tuple(prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


def quiet_known_noise() -> None:
    """Silence :data:`KNOWN_LOG_NOISE` and :data:`KNOWN_WARNINGS`, vLLM's INFO lines (unless
    ``VLLM_LOGGING_LEVEL`` says otherwise) and transformers' :data:`FILE_BARS`. Idempotent;
    call it before vLLM is imported for the logging level to apply."""
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    by_logger: dict[str, list[str]] = {}
    for name, prefix in KNOWN_LOG_NOISE:
        by_logger.setdefault(name, []).append(prefix)
    for name, prefixes in by_logger.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMessages) for f in logger.filters):
            logger.addFilter(_DropMessages(prefixes))
    for category, message in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    # One bar per model loaded or saved (instant for the tiny model, and at every checkpoint):
    # orz-rl's start-up line says what loads. Downloads keep their bars.
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_tqdm_hook(_without_file_bars)


#: transformers' bars over the weights of one model being loaded or saved.
FILE_BARS = ("Loading weights", "Writing model shards")


def _without_file_bars(factory, args, kwargs):
    from transformers.utils.logging import EmptyTqdm

    return (EmptyTqdm if kwargs.get("desc") in FILE_BARS else factory)(*args, **kwargs)
