"""Rollouts over several vLLM engines, each a Ray actor: :class:`RayvLLMEngines`.

The trainer's single-machine default is one engine inside its own process
(:func:`orz_rl.rollout.engines.make_vllm_engine`). Past one machine, or under
``torchrun`` (where an in-process engine would join torch.distributed's world),
the engines live in Ray actors: ``layout.vllm_engines`` of them, each on
``layout.vllm_tensor_parallel`` GPUs of its own (or on CPU cores, which is how
the tests run them here).

:class:`RayvLLMEngines` has ``vllm.LLM``'s ``generate`` signature, so the vLLM policy
(:class:`orz_rl.rollout.policies.vLLMRolloutWrapper`, a TorchRL ``vLLMWrapper``) samples from
it as from one engine and the collector stays one ``LLMCollector`` (orz-rl's
:class:`~orz_rl.rollout.collector.SingleTurnCollector`): the env, its grader and its
prompt sampler (checkpointed for exact resume) stay in the trainer, and only
generation is spread. A batch of prompts is cut into one
contiguous share per engine at prompt boundaries, so the ``n`` samples of a
prompt stay on one engine (they share its prefix cache); the outputs come back
in the batch's order.

:class:`RayEngineUpdater` is the TorchRL weight updater for them: the actor's
weights go into Ray's object store once and every engine loads them from
there (``reload_weights``, as the in-process updater does), then drops its
prefix cache. On GPUs an NCCL broadcast would be faster; the object store is
what works the same on a CPU, where the tests run.

Why not TorchRL's ``RayLLMCollector``: it runs a whole collector (env, reward,
sampler) in each Ray actor, i.e. several prompt streams; ORZ's step is one
stream of ``prompts_per_step`` prompts whose state is the trainer's. Why not
TorchRL's ``AsyncVLLM``: it claims GPUs per replica, sends each request to a
random replica (splitting a prompt's samples) and syncs weights over NCCL only.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from orz_rl.models.loading import check_model_path
from orz_rl.rollout.engines import BackendUnavailableError, make_vllm_engine
from orz_rl.rollout.weight_sync import CheckpointWeightUpdater, vLLMInProcessUpdater
from orz_rl.runtime.metrics import resident_bytes


def _ray():
    try:
        import ray
    except ImportError:  # one line that names the fix, as for a missing vLLM
        raise BackendUnavailableError(
            "layout.vllm_engines > 0 needs Ray, which does not import here: install the project "
            "with `pip install -e '.[ray]'`"
        ) from None
    return ray


def _join(ray, address: str) -> None:
    """Join the Ray cluster at ``address``, or say in one line why not (``layout.ray_address``)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if host and port.isdigit():
        # Ray retries an address nobody answers at for minutes: ask once, briefly, first.
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except OSError as e:
            raise BackendUnavailableError(
                f"layout.ray_address = {address!r}: nothing answers there ({e}); start the cluster "
                "with `ray start --head` on that node"
            ) from None
    try:
        ray.init(address=address, log_to_driver=False)
    except ConnectionError as e:  # "auto" without a cluster on this node, among others
        raise BackendUnavailableError(f"layout.ray_address = {address!r}: {e}") from None


class vLLMEngineActor:
    """One vLLM engine inside a Ray actor process (in-process there, so weights load by reference)."""

    def __init__(self, path: str, engine_kwargs: dict, threads: int) -> None:
        if threads > 0:
            torch.set_num_threads(threads)
        self.llm = make_vllm_engine(path, **engine_kwargs)
        self.updater = vLLMInProcessUpdater(self.llm)

    def ready(self) -> int:
        return os.getpid()

    def resident_bytes(self) -> int:
        return resident_bytes() or 0

    def generate(self, prompts, sampling_params):
        return self.llm.generate(prompts, sampling_params=sampling_params, use_tqdm=False)

    def load_weights(self, weights: list[tuple[str, torch.Tensor]]) -> float:
        self.updater.push_weights(dict(weights))  # TorchRL's updater API, by reference
        return self.updater.last_sync_seconds

    def score(self, token_ids: list[int]) -> list[float]:
        """Log-prob of each token of ``token_ids`` after the ones before it (the first has none)."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=1.0)
        out = self.llm.generate(TokensPrompt(prompt_token_ids=token_ids), params, use_tqdm=False)[0]
        return [lp[t].logprob for t, lp in zip(token_ids[1:], out.prompt_logprobs[1:], strict=True)]


def split_at_groups(prompts: Sequence, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous ``(start, end)`` spans of ``prompts``, as even as possible, never
    cutting a run of equal consecutive prompts (a prompt's samples); some may be empty."""
    n = len(prompts)
    # Where a run of equal prompts ends: the only places a span may end.
    bounds = [i for i in range(1, n + 1) if i == n or prompts[i] != prompts[i - 1]]
    spans, start = [], 0
    for k in range(1, parts):
        target = k * n / parts
        end = min((b for b in [start, *bounds] if b >= start), key=lambda b: (abs(b - target), b))
        spans.append((start, end))
        start = end
    spans.append((start, n))
    return spans


class RayvLLMEngines:
    """``num_engines`` vLLM engines as Ray actors, behind ``vllm.LLM``'s ``generate``.

    Args:
        path: Hugging Face model directory every engine loads.
        num_engines: engines (Ray actors) to start.
        tensor_parallel: GPUs per engine (each actor claims that many; 0 on a CPU machine).
        ray_address: cluster to join ("auto"; "" starts a local one for this process).
        threads: torch/OMP threads per engine on a CPU (0: vLLM's choice).
        engine_kwargs: :func:`orz_rl.rollout.engines.make_vllm_engine`'s keywords; engine ``i``
            is seeded ``seed + i`` so that engines do not draw the same samples.
    """

    def __init__(
        self,
        path: str,
        num_engines: int,
        *,
        tensor_parallel: int = 1,
        ray_address: str = "",
        threads: int = 1,
        **engine_kwargs,
    ) -> None:
        check_model_path(path)
        ray = _ray()
        if not ray.is_initialized():
            # Ray's future default, which its start-up tip asks for: an actor that claims no GPU
            # keeps the visible devices it inherits (every engine here claims its GPUs).
            os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
            if ray_address:
                _join(ray, ray_address)
            else:
                ray.init(
                    num_cpus=max(os.cpu_count() or 1, num_engines),
                    include_dashboard=False,
                    log_to_driver=False,
                    # The weights pass through it once per push; the default (30 % of RAM) is
                    # memory the trainer would rather keep.
                    object_store_memory=max(256 << 20, 4 * _model_bytes(path)),
                )
        on_gpu = torch.cuda.is_available()
        gpus = tensor_parallel if on_gpu else 0
        # Each engine's actor process starts from the trainer's environment; vLLM must run
        # in-process there (the updater hands it tensors by reference).
        env = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
        if not on_gpu and threads > 0:
            env["OMP_NUM_THREADS"] = str(threads)
        remote = ray.remote(num_cpus=1 if not on_gpu else 0, num_gpus=gpus, runtime_env={"env_vars": env})
        actor_class = remote(vLLMEngineActor)
        seed = engine_kwargs.pop("seed", 0)
        if on_gpu and tensor_parallel > 1:
            engine_kwargs["tensor_parallel_size"] = tensor_parallel
        self.engines = [
            actor_class.remote(path, dict(engine_kwargs, seed=seed + i), threads) for i in range(num_engines)
        ]
        #: The engines' process ids (they are up when this returns).
        self.pids = ray.get([e.ready.remote() for e in self.engines])
        self.last_shares: list[int] = []

    def __len__(self) -> int:
        return len(self.engines)

    def remote(self, *args, **kwargs):
        """TorchRL 0.14.1's ``vLLMWrapper`` admits an engine that is not ``vllm.LLM`` or
        ``AsyncVLLM`` when it has ``generate`` and ``remote`` (a Ray actor); this pool is not one
        actor, and :class:`orz_rl.rollout.policies.vLLMRolloutWrapper` calls :meth:`generate` directly."""
        raise TypeError("RayvLLMEngines is not a Ray actor: call generate()")

    def generate(self, prompts, sampling_params=None, use_tqdm: bool = False, **kwargs):
        """``vllm.LLM.generate`` over the engines: one contiguous share of ``prompts`` each."""
        ray = _ray()
        if "prompt_token_ids" in kwargs:  # vLLMWrapper's tokens mode, as vllm.LLM takes it
            from vllm.inputs import TokensPrompt

            prompts = [TokensPrompt(prompt_token_ids=ids) for ids in kwargs.pop("prompt_token_ids")]
        prompts = [prompts] if isinstance(prompts, (str, dict)) else list(prompts)
        keys_ = [p if isinstance(p, str) else repr(p) for p in prompts]
        spans = split_at_groups(keys_, len(self.engines))
        #: Prompts each engine generated for in the latest call.
        self.last_shares = [end - start for start, end in spans]
        futures = [
            engine.generate.remote(prompts[start:end], sampling_params)
            for engine, (start, end) in zip(self.engines, spans, strict=True)
            if end > start
        ]
        return [out for part in ray.get(futures) for out in part]

    def push_weights(self, weights: list[tuple[str, torch.Tensor]]) -> float:
        """Every engine loads ``weights`` (one copy in the object store); returns the seconds."""
        ray = _ray()
        start = time.perf_counter()
        ref = ray.put(weights)
        ray.get([engine.load_weights.remote(ref) for engine in self.engines])
        return time.perf_counter() - start

    def score(self, token_ids: list[int]) -> list[list[float]]:
        """Each engine's log-probs of ``token_ids[1:]`` (teacher-forced), one list per engine."""
        ray = _ray()
        return ray.get([engine.score.remote(list(token_ids)) for engine in self.engines])

    def resident_gib(self) -> float:
        """The engines' processes' resident memory now, summed, in GiB."""
        ray = _ray()
        return sum(ray.get([engine.resident_bytes.remote() for engine in self.engines])) / 2**30

    def shutdown(self) -> None:
        ray = _ray()
        for engine in self.engines:
            ray.kill(engine)
        self.engines = []


def _model_bytes(path: str) -> int:
    return sum(f.stat().st_size for f in Path(path).glob("*.safetensors"))


class RayEngineUpdater(CheckpointWeightUpdater):
    """TorchRL weight updater pushing a causal LM's weights to every engine of a :class:`RayvLLMEngines`.

    Attributes:
        last_sync_seconds: wall-clock seconds of the latest push.
    """

    def __init__(self, engines: RayvLLMEngines) -> None:
        self.engines = engines
        self.last_sync_seconds = 0.0

    def _sync_weights_with_worker(
        self, *, worker_id: int | None = None, server_weights: dict[str, torch.Tensor]
    ) -> None:
        # One copy in host memory: Ray's object store takes CPU tensors.
        weights = [(name, tensor.cpu()) for name, tensor in server_weights.items()]
        self.last_sync_seconds = self.engines.push_weights(weights)
