"""The plan of a run over machines, computed from its configuration alone (no weights load).

``orz-rl train RECIPE --dry-run`` prints it (:func:`format_plan` of :func:`plan`): where the
training ranks and the vLLM engines go, the memory one device of each kind needs, term by
term, and the batch sizes every rank sees.

Sizes come from the model's dimensions (:func:`model_dims`): a local model directory's
``config.json``, the tiny model's :class:`~orz_rl.models.tiny.TinyModelConfig` where a CPU
recipe has not built it yet, or the published ``config.json`` of the Qwen2.5 base models
(:data:`QWEN25`).

The memory estimate is the worst case of the trainer as written: every sequence of a
micro-batch padded to ``max_prompt_tokens + max_new_tokens``, actor and critic both trained on
(and FSDP2-sharded over) the same training ranks, AdamW state in the parameters' dtype.
Activations follow Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large
Transformer Models", section 4.1): the bytes autograd keeps per token and layer, here counted
for a Qwen2 layer (RMSNorm, grouped-query attention, SwiGLU MLP, no dropout) and checked against
what autograd actually saves (``tests/test_layout.py``). SDPA never materialises the
``seq x seq`` attention scores, so the paper's ``5as/h`` term is absent; the ``seq x seq``
padding mask that SDPA keeps per layer is not, and is counted.

With ``ppo.activation_checkpointing`` (transformers' per-layer checkpointing, non-reentrant) the
forward keeps only each decoder layer's input, plus the padding mask and rotary cos/sin that
every layer's recomputation holds once, and the backward recomputes one layer's activations at a
time (:func:`checkpointed_activation_bytes`, also checked against autograd). Without it the plan
prints the training device's total with it, as a hint.

The actor's fp32 logits at the response positions are counted at their backward's peak
(:data:`LOGIT_PEAK_BYTES` per logit, measured) for the tokens the LM head runs on at once:
``ppo.logit_chunk_tokens`` of them, or a micro-batch's response tokens where fewer
(:mod:`orz_rl.ppo.token_log_probs`). Unchunked, at ORZ's 8,000-token responses and 152k vocabulary,
they would be the training GPU's largest term once the activations are checkpointed.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from orz_rl.advantages.registry import get_estimator
from orz_rl.config import TrainConfig, bound_problems
from orz_rl.models.dims import QWEN25, ModelDims, dims_from_config_json

GIB = 2**30
DTYPE_BYTES = {"float32": 4, "bfloat16": 2}
#: Bytes per logit of the actor's response positions while the policy loss is differentiated.
#: Unchunked, autograd keeps one fp32 copy after the forward (``logsumexp``'s input: 4 bytes); the
#: backward's peak holds 20 per logit: that copy, the fp32 gradient scattered back from the chosen
#: tokens' log-probs, and logsumexp's backward ``grad * (logits - lse).exp()`` with the difference,
#: its exp and their product alive at once. Chunked, nothing is kept per logit and the backward
#: recomputes one chunk at a time, to the same 20 bytes per logit of that chunk. Both are measured
#: (``tests/tools/test_plan.py``).
LOGIT_PEAK_BYTES = 20


def model_dims(cfg: TrainConfig) -> ModelDims:
    """``cfg.model``'s dimensions: its ``config.json``, the tiny model's recipe, or :data:`QWEN25`."""
    path = cfg.model.path
    if (Path(path) / "config.json").is_file():
        return dims_from_config_json(path)
    if cfg.model.build_tiny_if_missing and not Path(path).exists():
        from orz_rl.models.tiny import TinyModelConfig

        t = TinyModelConfig()
        heads = t.hidden_size // t.head_dim
        # As tiny_model.build_model shapes it. Its vocabulary is the BPE's, which may stop short of
        # the target: an upper bound, and immaterial at this size.
        return ModelDims(
            t.hidden_size,
            t.num_layers,
            heads,
            heads,
            t.head_dim,
            4 * t.hidden_size,
            t.vocab_size,
            tied=False,
            source=f"TinyModelConfig (not built yet; vocabulary at most {t.vocab_size})",
        )
    if path in QWEN25:
        return QWEN25[path]
    raise ValueError(
        f"model.path {path!r} has no config.json and is not one of the known hub names "
        f"({', '.join(QWEN25)}): --dry-run needs the model's dimensions"
    )


# --- parameters -----------------------------------------------------------------------------


def layer_parameters(d: ModelDims) -> int:
    """Parameters of one Qwen2 decoder layer."""
    q, kv = d.heads * d.head_dim, d.kv_heads * d.head_dim
    attention = d.hidden * (q + 2 * kv) + (q + 2 * kv) + q * d.hidden  # Qwen2: q/k/v have biases, o none
    mlp = 3 * d.hidden * d.intermediate  # gate, up, down; no biases
    return attention + mlp + 2 * d.hidden  # two RMSNorm weights


def _trunk_parameters(d: ModelDims) -> int:
    return d.vocab * d.hidden + d.layers * layer_parameters(d) + d.hidden  # + final RMSNorm


def actor_parameters(d: ModelDims) -> int:
    """Parameters of the causal LM: the actor, and the weights every vLLM engine holds."""
    return _trunk_parameters(d) + (0 if d.tied else d.vocab * d.hidden)


def critic_parameters(d: ModelDims) -> int:
    """Parameters of the critic: the same transformer without LM head, plus ``Linear(hidden, 1)``."""
    return _trunk_parameters(d) + d.hidden


# --- activations ----------------------------------------------------------------------------


def layer_activation_bytes(d: ModelDims, sequences: int, seq_len: int, dtype_bytes: int) -> int:
    """Bytes autograd keeps for one decoder layer over ``sequences`` sequences of ``seq_len`` tokens.

    Per token: each RMSNorm keeps its input upcast to fp32 (transformers' Qwen2RMSNorm), its
    output and the next projection's input; attention keeps q, k and v (k and v repeated to
    every query head: with a padding mask transformers does not use SDPA's native GQA), the
    output and an fp32 log-sum-exp per head, and one row of the ``seq x seq`` padding mask;
    the SwiGLU MLP keeps gate, silu(gate), up and their product.
    """
    q = d.heads * d.head_dim
    norm = 4 * d.hidden + 2 * dtype_bytes * d.hidden
    attention = 4 * dtype_bytes * q + 4 * d.heads + dtype_bytes * seq_len
    mlp = 4 * dtype_bytes * d.intermediate
    return sequences * seq_len * (2 * norm + attention + mlp)


def layer_input_bytes(d: ModelDims, sequences: int, seq_len: int, dtype_bytes: int) -> int:
    """Bytes per-layer activation checkpointing keeps for one decoder layer: its input hidden states
    (``torch.utils.checkpoint`` saves the tensors a ``GradientCheckpointingLayer`` gets positionally,
    which for a Qwen2 layer is the hidden states only)."""
    return sequences * seq_len * d.hidden * dtype_bytes


def shared_layer_input_bytes(d: ModelDims, sequences: int, seq_len: int, dtype_bytes: int) -> int:
    """What every checkpointed layer's recomputation holds on to, once for all layers: the
    ``seq x seq`` boolean padding mask and the rotary cos and sin (transformers binds them to the
    layer call as keyword arguments, so they live as long as the recomputations do)."""
    return sequences * seq_len * (seq_len + 2 * d.head_dim * dtype_bytes)


def checkpointed_activation_bytes(d: ModelDims, sequences: int, seq_len: int, dtype_bytes: int) -> int:
    """Bytes of ``d.layers`` decoder layers' activations under per-layer activation checkpointing.

    The forward keeps every layer's input and the shared mask and rotary tensors; the backward
    recomputes one layer at a time, whose activations (:func:`layer_activation_bytes`) live until
    that layer's backward is done.
    """
    kept = d.layers * layer_input_bytes(d, sequences, seq_len, dtype_bytes)
    kept += shared_layer_input_bytes(d, sequences, seq_len, dtype_bytes)
    return kept + layer_activation_bytes(d, sequences, seq_len, dtype_bytes)


def _final_norm_bytes(d: ModelDims, tokens: int, dtype_bytes: int) -> int:
    return tokens * (4 * d.hidden + dtype_bytes * d.hidden)


def logit_tokens(sequences: int, response_tokens: int, chunk_tokens: int) -> int:
    """Response tokens whose logits the LM head holds at once: a micro-batch's, or a chunk's."""
    tokens = sequences * response_tokens
    return min(tokens, chunk_tokens) if chunk_tokens > 0 else tokens


def logits_bytes(
    d: ModelDims, sequences: int, response_tokens: int, chunk_tokens: int = 0, dtype_bytes: int = 4
) -> int:
    """The actor's fp32 logits at its response positions (the LM head runs on those only, a chunk of
    ``chunk_tokens`` at a time where that is fewer) at the backward's peak. Chunked, the head's
    weight gradient of the chunk before is still alive then (measured), ``dtype_bytes`` each."""
    tokens = logit_tokens(sequences, response_tokens, chunk_tokens)
    chunked = tokens < sequences * response_tokens
    return tokens * d.vocab * LOGIT_PEAK_BYTES + (d.vocab * d.hidden * dtype_bytes if chunked else 0)


# --- the plan -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryTerm:
    """One named share of a device's memory."""

    name: str
    """What the bytes hold."""
    bytes: int
    """How many."""


@dataclass(frozen=True)
class DeviceMemory:
    """The memory one device of a kind needs, term by term."""

    device: str
    """Which device (``training GPU``, ``vLLM engine GPU``, ``training process``...)."""
    terms: tuple[MemoryTerm, ...]
    """Its shares, summed by :attr:`total`."""
    capacity: int | None
    """Bytes the device has (a CPU run's process: its share of the machine's memory); None: unknown."""
    problem: str = ""
    """Why the device cannot serve although the sum fits ("" when it can)."""

    @property
    def total(self) -> int:
        return sum(t.bytes for t in self.terms)

    @property
    def fits(self) -> bool:
        return not self.problem and (self.capacity is None or self.total <= self.capacity)


@dataclass(frozen=True)
class KVCache:
    """What one vLLM engine's KV cache holds against the responses it generates per step."""

    bytes_per_gpu: int
    """KV cache on each GPU of the engine."""
    tokens: int
    """Tokens it holds (``2 * layers * kv_heads/tp * head_dim * dtype bytes`` each, per GPU)."""
    sequence_tokens: int
    """Tokens of one full-length sequence (``max_prompt_tokens + max_new_tokens``)."""
    responses: int
    """Responses this engine generates per step (its share of the step's)."""

    @property
    def sequences_at_once(self) -> int:
        """Full-length sequences the cache holds at once (vLLM queues the others)."""
        return self.tokens // self.sequence_tokens


@dataclass(frozen=True)
class Batches:
    """The batch sizes of one generation step, overall and per training rank."""

    prompts: int
    """Distinct prompts per step."""
    samples: int
    """Responses sampled per prompt."""
    policy_steps: int
    """Actor optimiser steps per generation step."""
    critic_steps: int
    """Critic optimiser steps per generation step (0: a critic-free estimator, no critic)."""
    micro_batch: int
    """Sequences per forward/backward pass (``ppo.micro_batch_size``)."""
    ranks: int
    """Training ranks the mini-batches are split over."""

    @property
    def responses(self) -> int:
        return self.prompts * self.samples

    def mini_batch(self, steps: int) -> int:
        """Responses per optimiser step (the trainer's ``ceil(responses / steps)``)."""
        return math.ceil(self.responses / steps)

    def per_rank(self, steps: int) -> int:
        """Sequences one rank processes per optimiser step."""
        return math.ceil(self.mini_batch(steps) / self.ranks)

    def accumulation(self, steps: int) -> int:
        """Micro-batches (gradient-accumulation steps) one rank runs per optimiser step."""
        return math.ceil(self.per_rank(steps) / self.micro_batch)


@dataclass(frozen=True)
class RunPlan:
    """Where a run's processes go, what each device holds, and the batch sizes."""

    model: str
    """``model.path``."""
    dims: ModelDims
    """The model's dimensions."""
    dtype: str
    """Parameter dtype of actor, critic and engines."""
    gpu: bool
    """A GPU run (else every process runs on CPUs)."""
    nodes: int
    """Machines."""
    gpus_per_node: int
    """GPUs per machine (0 on a CPU run)."""
    training_ranks: int
    """Processes that train actor and critic (one GPU each on a GPU run)."""
    generation: str
    """Where responses are generated, in words."""
    vllm_engines: int
    """vLLM engines in processes of their own (0: none, or one inside the training process)."""
    vllm_tensor_parallel: int
    """GPUs per engine."""
    memory: tuple[DeviceMemory, ...]
    """One entry per kind of device."""
    kv_cache: KVCache | None
    """One engine's KV cache (None without vLLM)."""
    activation_checkpointing: bool
    """``ppo.activation_checkpointing``: the training device's activations are the checkpointed ones."""
    checkpointed_training_bytes: int
    """The training device's total with per-layer activation checkpointing (whether on or not)."""
    batches: Batches
    """Batch sizes."""
    reference: bool = False
    """A frozen reference model beside the actor (a KL term, ``ppo.kl_coef > 0``)."""
    notes: tuple[str, ...] = ()
    """What else a reader of the plan should know."""

    @property
    def fits(self) -> bool:
        return all(m.fits for m in self.memory)


def _count(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e8 else f"{n / 1e6:.2f}M"


def _training_ranks(cfg: TrainConfig, engines: int, tp: int, notes: list[str]) -> int:
    """Processes that train. A CPU run trains in one. On GPUs, engines take GPUs of their own and
    every other GPU is a training rank; without engine processes vLLM runs inside the trainer's
    process, which is then the only training rank (the engine shares its GPU)."""
    lay = cfg.layout
    gpus = lay.nodes * lay.gpus_per_node
    if gpus == 0:
        return 1
    if cfg.rollout.backend == "transformers":
        notes.append("generation by transformers on the actor: its KV cache is not estimated")
        return gpus
    if engines:
        if tp > lay.gpus_per_node:
            raise ValueError(
                f"layout.vllm_tensor_parallel = {tp} exceeds layout.gpus_per_node = {lay.gpus_per_node}: "
                "an engine's tensor-parallel group stays on one node"
            )
        if engines * tp >= gpus:
            raise ValueError(
                f"layout.vllm_engines x layout.vllm_tensor_parallel = {engines} x {tp} GPUs leave none of "
                f"the {gpus} GPUs ({lay.nodes} nodes x {lay.gpus_per_node}) to train on"
            )
        return gpus - engines * tp
    if lay.nodes > 1:
        raise ValueError(
            f"layout.nodes = {lay.nodes} with layout.vllm_engines = 0: the engine then runs inside the "
            "one training process, on one GPU of one node; set layout.vllm_engines to use more"
        )
    if gpus > 1:
        notes.append(
            f"{gpus - 1} of {gpus} GPUs idle: layout.vllm_engines = 0 runs the engine inside the one "
            "training process; set layout.vllm_engines to train on the others"
        )
    return 1


def _training_terms(cfg: TrainConfig, dims: ModelDims, ranks: int, micro: int) -> list[MemoryTerm]:
    """Actor and critic states sharded over ``ranks``, the gathered unit, one micro-batch's activations."""
    d, r = DTYPE_BYTES[cfg.model.dtype], cfg.rollout
    seq = r.seq_len
    terms = []
    models = [("actor", actor_parameters(dims))]
    models += [("critic", critic_parameters(dims))] if get_estimator(cfg.ppo.advantage).needs_critic else []
    for name, n in models:
        shard = f"{_count(n)} / {ranks} ranks" if ranks > 1 else _count(n)
        terms += [
            MemoryTerm(f"{name} parameters ({shard})", n * d // ranks),
            MemoryTerm(f"{name} gradients", n * d // ranks),
            # torch's AdamW keeps exp_avg and exp_avg_sq in the parameter's dtype.
            MemoryTerm(f"{name} AdamW m and v ({cfg.model.dtype}, as the parameters)", 2 * n * d // ranks),
        ]
    if cfg.ppo.uses_reference:
        n = actor_parameters(dims)
        shard = f"{_count(n)} / {ranks} ranks" if ranks > 1 else _count(n)
        terms.append(
            MemoryTerm(f"reference parameters ({shard}; frozen: no gradients, no AdamW)", n * d // ranks)
        )
    if ranks > 1:
        # FSDP2 gathers one unit at a time: the root (embeddings, LM head) and a decoder layer.
        head = dims.vocab * dims.hidden * (1 if dims.tied else 2)
        terms.append(
            MemoryTerm("all-gathered: embeddings/LM head + one layer", (head + layer_parameters(dims)) * d)
        )
    # Actor and critic train one after the other; the actor's micro-batch is the larger (the
    # policy mini-batch is) and adds the logits, so its activations are the peak.
    checkpointing = cfg.ppo.activation_checkpointing
    how = "activation checkpointing" if checkpointing else "no checkpointing"
    return terms + [
        MemoryTerm(
            f"activations, {micro} x {seq} tokens x {dims.layers} layers ({how})",
            _activation_bytes(cfg, dims, micro, checkpointing),
        ),
        MemoryTerm(
            f"actor logits, {_logits_shape(micro, r.max_new_tokens, cfg.ppo.logit_chunk_tokens)} x "
            f"{dims.vocab} (fp32)",
            logits_bytes(dims, micro, r.max_new_tokens, cfg.ppo.logit_chunk_tokens, d),
        ),
    ]


def _logits_shape(micro: int, response_tokens: int, chunk_tokens: int) -> str:
    tokens = logit_tokens(micro, response_tokens, chunk_tokens)
    if tokens < micro * response_tokens:
        return f"{tokens:,} tokens (a chunk of {micro} x {response_tokens})"
    return f"{micro} x {response_tokens}"


def _activation_bytes(cfg: TrainConfig, dims: ModelDims, micro: int, checkpointing: bool) -> int:
    """One micro-batch's activations of the decoder (and its final norm), checkpointed or not.

    Checkpointed, the one recomputed layer is added to everything else, the logits included,
    although the two are not alive at once: the backward is done with the logits before it
    reaches the last decoder layer and recomputes it. The true peak is the larger of two phases,
    (kept + logits at their backward's peak) and (kept + one recomputed layer + the gradients
    its backward makes, measured at about a sixth of a layer more). The sum exceeds the larger by
    the smaller (with chunked logits the two are of a size: 7B, 3.9 GiB of one chunk's logits
    against 2.4 GiB of one layer per sequence); that surplus is kept on purpose, as room for what
    the estimate leaves out (the CUDA context, communication buffers, the allocator's
    fragmentation).
    """
    d = DTYPE_BYTES[cfg.model.dtype]
    seq = cfg.rollout.seq_len
    if checkpointing:
        layers = checkpointed_activation_bytes(dims, micro, seq, d)
    else:
        layers = dims.layers * layer_activation_bytes(dims, micro, seq, d)
    return layers + _final_norm_bytes(dims, micro * seq, d)


def host_memory_bytes() -> int:
    """This machine's physical memory, which a CPU run's processes share."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _backend_notes(cfg: TrainConfig) -> list[str]:
    """Notes on ``rollout.backend``: what ``auto`` picks, engines that transformers leaves unused."""
    lay, r = cfg.layout, cfg.rollout
    notes: list[str] = []
    if r.backend == "auto":
        notes.append("rollout.backend = auto: on GPUs vLLM where it imports, else transformers on the actor")
    if r.backend == "transformers" and lay.vllm_engines:
        notes.append(f"rollout.backend = transformers: layout.vllm_engines = {lay.vllm_engines} unused")
    return notes


def _batches(cfg: TrainConfig, ranks: int) -> Batches:
    """The batch sizes of ``cfg``'s generation step over ``ranks`` training ranks."""
    r, p = cfg.rollout, cfg.ppo
    return Batches(
        prompts=r.prompts_per_step,
        samples=r.samples_per_prompt,
        policy_steps=p.policy_steps_per_rollout,
        critic_steps=p.critic_steps_per_rollout if get_estimator(p.advantage).needs_critic else 0,
        micro_batch=p.micro_batch_size,
        ranks=ranks,
    )


def _capacity(cfg: TrainConfig, processes: int, host_memory: int | None, notes: list[str]) -> int:
    """Bytes one device has: a GPU's memory, or a CPU process's equal part of its machine's memory."""
    lay = cfg.layout
    if lay.gpus_per_node > 0:
        return int(lay.gpu_memory_gib * GIB)
    host = host_memory if host_memory is not None else host_memory_bytes()
    per_machine = math.ceil(processes / lay.nodes)
    notes.append(f"host memory: {host / GIB:.1f} GiB per machine, shared by {per_machine} process(es)")
    return host // per_machine


def _kv_bytes_per_token(dims: ModelDims, tp: int, dtype_bytes: int) -> int:
    """Bytes of KV cache per token on each of an engine's ``tp`` GPUs."""
    # vLLM splits the KV heads over the tensor-parallel GPUs (replicating them past kv_heads).
    return 2 * dims.layers * math.ceil(dims.kv_heads / tp) * dims.head_dim * dtype_bytes


def _engine_reserved_bytes(cfg: TrainConfig, weights: int, capacity: int) -> int:
    """Bytes one engine GPU (or CPU engine) reserves for its weights and KV cache together."""
    r = cfg.rollout
    # On a GPU vLLM reserves gpu_memory_utilization of it for weights and KV cache; on a CPU
    # the KV cache is sized explicitly.
    if cfg.layout.gpus_per_node > 0:
        return int(r.vllm_gpu_memory_utilization * capacity)
    return weights + int(r.vllm_cpu_kv_cache_gib * GIB)


@dataclass(frozen=True)
class _VllmMemory:
    """What vLLM adds to a plan: its KV cache, and its memory in engine processes or the trainer's."""

    kv_cache: KVCache
    """One engine's KV cache."""
    problem: str
    """Why that KV cache cannot serve ("" when it can)."""
    engine_memory: tuple[DeviceMemory, ...]
    """The engine processes' memory (empty: the engine runs in the training process)."""
    in_training: MemoryTerm | None
    """The engine's share of the training process (None: it runs in processes of its own)."""


def _vllm_memory(
    cfg: TrainConfig, dims: ModelDims, d: int, engines: int, tp: int, capacity: int, responses: int
) -> _VllmMemory:
    """The vLLM engines' KV cache and memory, in processes of their own or in the training process."""
    r, gpu = cfg.rollout, cfg.layout.gpus_per_node > 0
    seq = r.seq_len
    weights = actor_parameters(dims) * d // tp
    reserved = _engine_reserved_bytes(cfg, weights, capacity)
    kv = max(reserved - weights, 0)
    kv_per_token = _kv_bytes_per_token(dims, tp, d)
    kv_cache = KVCache(kv, kv // kv_per_token, seq, math.ceil(responses / max(engines, 1)))
    problem = ""
    if kv_cache.sequences_at_once < 1:
        problem = f"the KV cache ({kv / GIB:.2f} GiB) holds no full-length sequence of {seq} tokens"
    if not engines:
        where = f"{r.vllm_gpu_memory_utilization} x GPU" if gpu else "weights + KV cache"
        return _VllmMemory(
            kv_cache, problem, (), MemoryTerm(f"vLLM engine in this process ({where})", reserved)
        )
    engine = DeviceMemory(
        "vLLM engine GPU" if gpu else "vLLM engine process (host memory)",
        (
            MemoryTerm(f"weights ({_count(actor_parameters(dims))} / tp {tp})", weights),
            MemoryTerm(f"KV cache ({kv_per_token:,} bytes per token)", kv),
        ),
        capacity,
        problem,
    )
    return _VllmMemory(kv_cache, problem, (engine,), None)


def _generation(cfg: TrainConfig, engines: int, tp: int) -> str:
    """Where responses are generated, in words."""
    if cfg.rollout.backend == "transformers":
        return "transformers generate() on the actor, in the training process"
    if not engines:
        return "one vLLM engine inside the training process"
    if cfg.layout.gpus_per_node > 0:
        return f"{engines} vLLM engine(s) as Ray actors, {tp} GPU(s) each"
    return f"{engines} vLLM engine process(es)"


def plan(cfg: TrainConfig, host_memory: int | None = None) -> RunPlan:
    """The plan of ``cfg``'s run; raises ``ValueError`` for a layout that cannot be placed.

    A CPU run's processes share each machine's memory (``host_memory`` bytes; default: this
    machine's): each gets an equal part of it as its capacity."""
    lay, r, p = cfg.layout, cfg.rollout, cfg.ppo
    problems = bound_problems(cfg)  # the fields' own bounds, as the preflight checks them
    if problems:
        raise ValueError("; ".join(problems))
    dims = model_dims(cfg)
    d = DTYPE_BYTES[cfg.model.dtype]
    gpu = lay.gpus_per_node > 0
    vllm = r.backend != "transformers"
    engines = lay.vllm_engines if vllm else 0
    tp = lay.vllm_tensor_parallel if engines else 1
    notes = _backend_notes(cfg)
    ranks = _training_ranks(cfg, engines, tp, notes)
    batches = _batches(cfg, ranks)
    micro = min(p.micro_batch_size, batches.per_rank(p.policy_steps_per_rollout))
    terms = _training_terms(cfg, dims, ranks, micro)
    capacity = _capacity(cfg, ranks + engines, host_memory, notes)
    vllm_memory = _vllm_memory(cfg, dims, d, engines, tp, capacity, batches.responses) if vllm else None
    if vllm_memory is not None and vllm_memory.in_training is not None:
        terms.append(vllm_memory.in_training)
    # With engine processes a KV cache too small is the engines' problem, else the trainer's.
    training = DeviceMemory(
        "training GPU" if gpu else "training process (host memory)",
        tuple(terms),
        capacity,
        "" if engines or vllm_memory is None else vllm_memory.problem,
    )
    return RunPlan(
        model=cfg.model.path,
        dims=dims,
        dtype=cfg.model.dtype,
        gpu=gpu,
        nodes=lay.nodes,
        gpus_per_node=lay.gpus_per_node,
        training_ranks=ranks,
        generation=_generation(cfg, engines, tp),
        vllm_engines=engines,
        vllm_tensor_parallel=tp,
        memory=(training, *(vllm_memory.engine_memory if vllm_memory is not None else ())),
        kv_cache=vllm_memory.kv_cache if vllm_memory is not None else None,
        activation_checkpointing=p.activation_checkpointing,
        checkpointed_training_bytes=training.total
        - _activation_bytes(cfg, dims, micro, p.activation_checkpointing)
        + _activation_bytes(cfg, dims, micro, True),
        batches=batches,
        reference=p.uses_reference,
        notes=tuple(notes),
    )


# --- text -----------------------------------------------------------------------------------

_WIDTH = 70


def _row(label: str, value: str, note: str = "") -> str:
    # Figures right-aligned in one column; words (model, generation) simply follow the label.
    value = f"{value:>13}" if len(value) <= 13 else value
    return f"  {label:<{_WIDTH}} {value}" + (f"  {note}" if note else "")


def _gib(n: int) -> str:
    # MiB below a tenth of a GiB, so that the CPU recipes' small terms do not read 0.00.
    return f"{n / GIB:.2f} GiB" if n >= GIB / 10 else f"{n / 2**20:.2f} MiB"


def _model_lines(run: RunPlan) -> list[str]:
    """The model, its dimensions and the parameters of actor, critic and reference."""
    d, b = run.dims, run.batches
    return [
        f"model {run.model} ({d.source}), {run.dtype}",
        _row(
            "dimensions",
            f"{d.layers} layers, hidden {d.hidden}, {d.heads} heads ({d.kv_heads} kv) of {d.head_dim}, "
            f"MLP {d.intermediate}, vocab {d.vocab}, {'tied' if d.tied else 'untied'} LM head",
        ),
        _row(
            "parameters",
            f"actor {_count(actor_parameters(d))}, "
            + (f"critic {_count(critic_parameters(d))}" if b.critic_steps else "no critic (ppo.advantage)")
            + (f", reference {_count(actor_parameters(d))} (KL term)" if run.reference else ""),
        ),
    ]


def _layout_lines(run: RunPlan) -> list[str]:
    """The machines, the training ranks (and engine GPUs) on them, and where generation runs."""
    if run.gpu:
        lines = [
            f"layout: {run.nodes} node(s) x {run.gpus_per_node} GPUs = {run.nodes * run.gpus_per_node} GPUs",
            _row("training ranks (torchrun; actor and critic FSDP2-sharded)", str(run.training_ranks)),
        ]
        if run.vllm_engines:
            # What torchrun --nproc-per-node and the engines' Ray placement take on each node.
            per_node = run.training_ranks / run.nodes
            engine_gpus = run.vllm_engines * run.vllm_tensor_parallel / run.nodes
            lines.append(_row("per node: training ranks + engine GPUs", f"{per_node:g} + {engine_gpus:g}"))
    else:
        lines = [
            "layout: CPU run (layout.gpus_per_node = 0)",
            _row("training processes", str(run.training_ranks)),
        ]
    return lines + [_row("generation", run.generation)]


def _verdict(mem: DeviceMemory) -> str:
    """Whether ``mem``'s total fits its device's capacity, in words."""
    if mem.capacity is None:
        return "(host memory: not checked)"
    if mem.fits:
        return f"fits in {mem.capacity / GIB:.1f} GiB"
    return f"DOES NOT FIT in {mem.capacity / GIB:.1f} GiB"


def _memory_lines(run: RunPlan, mem: DeviceMemory) -> list[str]:
    """One device's memory, term by term, its total and verdict (the training device's: checkpointed too)."""
    lines = ["", f"memory per {mem.device}"]
    lines += [_row(t.name, _gib(t.bytes)) for t in mem.terms]
    lines.append(_row("total", _gib(mem.total), _verdict(mem)))
    if mem.problem:
        lines.append(_row("", f"DOES NOT FIT: {mem.problem}"))
    if mem is run.memory[0] and not run.activation_checkpointing:
        lines.append(_row("total with --ppo.activation-checkpointing", _gib(run.checkpointed_training_bytes)))
    return lines


def _kv_cache_lines(kv: KVCache) -> list[str]:
    """What one engine's KV cache holds against the responses it generates."""
    return [
        "",
        "KV cache of one engine",
        _row("tokens", f"{kv.tokens:,}"),
        _row(f"full-length sequences ({kv.sequence_tokens} tokens) at once", f"{kv.sequences_at_once:,}"),
        _row("responses it generates per step", f"{kv.responses:,}"),
    ]


def _batch_lines(b: Batches) -> list[str]:
    """The responses per step, and each model's mini-batch, per rank and in micro-batches."""
    lines = [
        "",
        "batch per generation step",
        _row(f"responses ({b.prompts} prompts x {b.samples} samples)", f"{b.responses:,}"),
    ]
    for name, steps in (("policy", b.policy_steps), ("critic", b.critic_steps)):
        if not steps:
            continue
        lines += [
            _row(
                f"{name} mini-batch ({steps} optimiser step(s) per generation step)",
                f"{b.mini_batch(steps):,}",
            ),
            _row(f"  sequences per rank ({b.ranks} rank(s))", f"{b.per_rank(steps):,}"),
            _row(
                f"  gradient-accumulation steps per rank (micro-batch {b.micro_batch})",
                f"{b.accumulation(steps):,}",
            ),
        ]
    return lines


def format_plan(run: RunPlan) -> str:
    """``run`` as aligned text: model, layout, memory per device, batch sizes, notes."""
    lines = [*_model_lines(run), "", *_layout_lines(run)]
    for mem in run.memory:
        lines += _memory_lines(run, mem)
    if run.kv_cache is not None:
        lines += _kv_cache_lines(run.kv_cache)
    lines += _batch_lines(run.batches)
    if run.notes:
        lines += ["", "notes"] + [f"  - {n}" for n in run.notes]
    return "\n".join(lines)
