"""The plan of a run (``orz_rl.tools.plan``, ``orz-rl train RECIPE --dry-run``): parameter counts and
activation bytes agree with real modules, every recipe's plan prints without building anything,
and the memory verdict is honest."""

from __future__ import annotations

import weakref
from dataclasses import replace

import pytest
import torch
from tensordict import TensorDict
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from orz_rl import keys
from orz_rl.config import LayoutConfig
from orz_rl.models.dims import qwen2_config
from orz_rl.recipes import RECIPES
from orz_rl.tools.plan import (
    GIB,
    QWEN25,
    ModelDims,
    _final_norm_bytes,
    actor_parameters,
    checkpointed_activation_bytes,
    critic_parameters,
    dims_from_config_json,
    format_plan,
    layer_activation_bytes,
    layer_input_bytes,
    logits_bytes,
    plan,
    shared_layer_input_bytes,
)

from ..conftest import orz_cli_here

ORZ = ["orz-0.5b", "orz-1.5b", "orz-7b", "orz-32b"]
#: What every dry run prints: the layout, the memory of a training device, the batch sizes.
PLAN_LINES = (
    "layout:",
    "memory per training",
    "total",
    "policy mini-batch",
    "critic mini-batch",
    "gradient-accumulation steps per rank",
)


def _numel(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_from_dims_equal_the_built_tiny_actor_and_critic(tiny_model_dir):
    from orz_rl.models.loading import load_causal_lm
    from orz_rl.ppo.critic import Critic

    dims = dims_from_config_json(tiny_model_dir)
    assert actor_parameters(dims) == _numel(load_causal_lm(str(tiny_model_dir)))
    assert critic_parameters(dims) == _numel(Critic.from_pretrained(tiny_model_dir))


@pytest.mark.parametrize("tied", [True, False])
def test_parameter_counts_from_dims_equal_a_built_grouped_query_qwen2(tied):
    from transformers import Qwen2ForCausalLM, Qwen2Model

    dims = ModelDims(
        hidden=96, layers=2, heads=6, kv_heads=2, head_dim=16, intermediate=200, vocab=300, tied=tied
    )
    assert actor_parameters(dims) == _numel(Qwen2ForCausalLM(qwen2_config(dims)))
    # The critic: the same trunk without LM head, plus its Linear(hidden, 1, bias=False).
    assert critic_parameters(dims) == _numel(Qwen2Model(qwen2_config(dims))) + dims.hidden


@pytest.mark.parametrize(
    "name, published",
    [
        ("Qwen/Qwen2.5-0.5B", 0.49e9),
        ("Qwen/Qwen2.5-1.5B", 1.54e9),
        ("Qwen/Qwen2.5-7B", 7.62e9),
        ("Qwen/Qwen2.5-32B", 32.8e9),
    ],
)
def test_qwen25_parameter_counts_match_the_published_sizes(name, published):
    assert actor_parameters(QWEN25[name]) == pytest.approx(published, rel=0.02)


def _saved_bytes(module: torch.nn.Module, run) -> int:
    """Bytes of the distinct non-parameter tensors autograd saves while ``run()`` builds its graph."""
    params = {p.untyped_storage().data_ptr() for p in module.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        run()
    return sum(seen.values())


class _LiveBytes(TorchDispatchMode):
    """Bytes of the distinct storages that the operations run under it made and that are still
    alive (``live``), and the most at any one moment (``peak``): what a caching allocator would
    hold for them. Storages of ``exclude`` (parameters, preallocated gradients) are not counted.
    A storage dies with the last tensor on it (tensors that autograd saves stay alive with it)."""

    def __init__(self, exclude) -> None:
        super().__init__()
        self.exclude = {t.untyped_storage().data_ptr() for t in exclude}
        self.tensors: dict[int, int] = {}  # storage -> live tensors on it
        self.sizes: dict[int, int] = {}
        self.live = self.peak = 0

    def _dead(self, storage: int) -> None:
        self.tensors[storage] -= 1
        if not self.tensors[storage]:
            del self.tensors[storage]
            self.live -= self.sizes.pop(storage)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage().data_ptr()
            if not storage or storage in self.exclude:
                continue
            if storage not in self.tensors:
                self.tensors[storage] = 0
                self.sizes[storage] = t.untyped_storage().nbytes()
                self.live += self.sizes[storage]
                self.peak = max(self.peak, self.live)
            self.tensors[storage] += 1
            weakref.finalize(t, self._dead, storage)
        return out


def _with_gradients(module: torch.nn.Module) -> list[torch.Tensor]:
    """``module``'s parameters and zero gradients for them, as a rank holds them after its first
    micro-batch (the backward then accumulates into them in place)."""
    for p in module.parameters():
        p.grad = torch.zeros_like(p)
    return [t for p in module.parameters() for t in (p, p.grad)]


@pytest.mark.parametrize("dtype, dtype_bytes", [(torch.float32, 4), (torch.bfloat16, 2)])
def test_activation_formula_equals_the_bytes_autograd_saves_per_qwen2_layer(dtype, dtype_bytes):
    from transformers import Qwen2Model

    batch, seq = 2, 96
    ids = torch.randint(0, 300, (batch, seq), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(batch, seq, dtype=torch.long)
    mask[0, :10] = 0  # left padding, as the trainer's batches have: SDPA gets a mask

    def saved(layers: int) -> int:
        torch.manual_seed(0)
        dims = ModelDims(96, layers, 6, 2, 16, 200, 300, tied=False)
        model = Qwen2Model(qwen2_config(dims)).to(dtype)
        positions = (mask.cumsum(-1) - 1).clamp_min(0)
        return _saved_bytes(
            model, lambda: model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False)
        )

    # One more layer's worth of saved tensors, whatever the model keeps once (embeddings, rotary).
    measured = saved(3) - saved(2)
    dims = ModelDims(96, 1, 6, 2, 16, 200, 300, tied=False)
    assert layer_activation_bytes(dims, batch, seq, dtype_bytes) == pytest.approx(measured, rel=0.01)


@pytest.mark.parametrize("dtype, dtype_bytes", [(torch.float32, 4), (torch.bfloat16, 2)])
def test_checkpointed_activation_formula_equals_what_a_checkpointed_qwen2_keeps(dtype, dtype_bytes):
    from transformers import Qwen2Model

    batch, seq = 2, 80  # seq unlike hidden (96), so that neither can pass for the other
    ids = torch.randint(0, 300, (batch, seq), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(batch, seq, dtype=torch.long)
    mask[0, :10] = 0  # left padding: SDPA gets a mask
    positions = (mask.cumsum(-1) - 1).clamp_min(0)

    def checkpointed(layers: int) -> Qwen2Model:
        torch.manual_seed(0)
        model = Qwen2Model(qwen2_config(ModelDims(96, layers, 6, 2, 16, 200, 300, tied=False))).to(dtype)
        model.gradient_checkpointing_enable({"use_reentrant": False})
        return model.train()  # as the trainer: transformers checkpoints in training mode only

    def forward(model: Qwen2Model) -> torch.Tensor:
        return model(
            input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False
        ).last_hidden_state

    one, two = (ModelDims(96, n, 6, 2, 16, 200, 300, tied=False) for n in (1, 2))
    # What autograd saves per checkpointed layer: its input hidden states, and nothing else.
    m3, m2 = checkpointed(3), checkpointed(2)
    measured = _saved_bytes(m3, lambda: forward(m3)) - _saved_bytes(m2, lambda: forward(m2))
    assert layer_input_bytes(one, batch, seq, dtype_bytes) == pytest.approx(measured, rel=0.01)

    # What the forward leaves alive for the backward: besides the saved tensors, the padding mask
    # and rotary cos/sin that transformers binds to every layer call, which the saved-tensor hooks
    # do not see, and the final norm's tensors (the output itself aside).
    model = checkpointed(2)
    tracker = _LiveBytes(_with_gradients(model))
    with tracker:
        out = forward(model)
        kept = tracker.live - out.untyped_storage().nbytes()
        # The backward recomputes one layer at a time, whose activations join the kept ones.
        # The gradients that layer's backward makes add somewhat more, not a second layer:
        # ``layout._activation_bytes`` says why the estimate need not count them.
        out.float().square().mean().backward()
    final_norm = _final_norm_bytes(one, batch * seq, dtype_bytes)
    expected_kept = 2 * layer_input_bytes(one, batch, seq, dtype_bytes)
    expected_kept += shared_layer_input_bytes(one, batch, seq, dtype_bytes) + final_norm
    assert expected_kept == pytest.approx(kept, rel=0.02)
    expected_peak = checkpointed_activation_bytes(two, batch, seq, dtype_bytes) + final_norm
    assert (
        expected_peak <= tracker.peak < expected_peak + layer_activation_bytes(one, batch, seq, dtype_bytes)
    )


def _policy_loss_memory(model, n: int, prompt: int, response: int, chunk: int) -> tuple[int, int]:
    """Bytes autograd saves in the policy loss's forward over ``n`` sequences of ``prompt`` and
    ``response`` tokens, and the most alive at once in forward and backward (parameters and their
    preallocated gradients aside)."""
    from orz_rl.ppo.actor import make_training_actor
    from orz_rl.ppo.losses import TokenClipPPOLoss

    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(0)
    batch = TensorDict(
        {
            keys.PROMPT_TOKENS: torch.randint(0, vocab, (n, prompt), generator=g),
            keys.PROMPT_MASK: torch.ones(n, prompt, dtype=torch.bool),
            keys.ACTION: torch.randint(0, vocab, (n, response), generator=g),
            keys.RESPONSE_MASK: torch.ones(n, response, dtype=torch.bool),
            keys.ACTION_LOG_PROB: -torch.rand(n, response, generator=g),
            keys.ADVANTAGE: torch.randn(n, response, 1, generator=g),
        },
        batch_size=[n],
    )
    loss = TokenClipPPOLoss(make_training_actor(model, chunk_tokens=chunk))
    tracker = _LiveBytes(_with_gradients(model))

    def forward_backward() -> None:
        with tracker:
            out = loss(batch)
            sum(v for k, v in out.items() if k.startswith("loss_")).backward()

    return _saved_bytes(model, forward_backward), tracker.peak


@pytest.mark.parametrize("chunk", [0, 256])
def test_actor_logits_bytes_at_the_backwards_peak_whole_and_chunked(chunk):
    from transformers import Qwen2ForCausalLM

    n, prompt, response = 2, 8, 512

    def measure(vocab: int) -> tuple[int, int]:
        torch.manual_seed(0)
        model = Qwen2ForCausalLM(qwen2_config(ModelDims(64, 1, 2, 1, 32, 128, vocab, tied=False)))
        return _policy_loss_memory(model.to(torch.bfloat16), n, prompt, response, chunk)

    # The difference of two vocabularies isolates what grows with it: the logits (and, chunked,
    # the LM head's weight gradient).
    (saved_large, peak_large), (saved_small, peak_small) = measure(4000), measure(2000)
    large, small = (ModelDims(64, 1, 2, 1, 32, 128, v, tied=False) for v in (4000, 2000))
    expected = logits_bytes(large, n, response, chunk, 2) - logits_bytes(small, n, response, chunk, 2)
    assert peak_large - peak_small == pytest.approx(expected, rel=0.01)
    # Whole, autograd keeps one fp32 copy of the logits; chunked, none (each chunk is recomputed).
    assert saved_large - saved_small == (4 * n * response * 2000 if chunk == 0 else 0)


def test_one_actor_pass_on_2048_tokens_at_the_real_vocabulary_stays_under_the_plans_figure(tmp_path):
    """Forward and backward of the policy loss on 2 x 1,024 response tokens of Qwen2.5-0.5B's
    width and 151,936-row vocabulary (one decoder layer), the LM head chunked as the recipes run
    it: the most memory alive at once is under ``--dry-run``'s activations plus logits for the
    same micro-batch, and far under what the whole ``[2,048, vocabulary]`` logits would hold.
    In fp32: only bytes are measured, and a CPU without AVX-512 multiplies bf16 ~160x slower
    (this pass took over 25 minutes in bf16 on one); the bf16 formulas are checked above."""
    from transformers import Qwen2ForCausalLM

    from orz_rl.models.dims import qwen2_config as config_of

    n, prompt, response = 2, 16, 1024
    dims = replace(QWEN25["Qwen/Qwen2.5-0.5B"], layers=1)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config_of(dims))
    model.config.to_json_file(tmp_path / "config.json")
    base = RECIPES["cpu-default"][1]
    cfg = replace(
        base,
        model=replace(base.model, path=str(tmp_path), dtype="float32"),
        rollout=replace(base.rollout, max_prompt_tokens=prompt, max_new_tokens=response),
        ppo=replace(base.ppo, micro_batch_size=n, pack_tokens=0),
    )
    [training, *_] = plan(cfg).memory
    planned = {t.name.split(",")[0]: t.bytes for t in training.terms}
    figure = planned["activations"] + planned["actor logits"]

    _, peak = _policy_loss_memory(model, n, prompt, response, cfg.ppo.logit_chunk_tokens)

    whole_logits = logits_bytes(dims, n, response)
    assert peak < figure, f"peak {peak / GIB:.2f} GiB over the plan's {figure / GIB:.2f} GiB"
    # Whole, the [2,048, vocabulary] logits alone would hold this much at the backward's peak.
    assert peak < whole_logits, f"peak {peak / GIB:.2f} GiB: the logits were not chunked"
    # And the plan is no blanket: within a quarter of what was measured.
    assert figure < 1.25 * peak, f"plan {figure / GIB:.2f} GiB against a peak of {peak / GIB:.2f} GiB"


def _dry_run_args(name: str, tmp_path) -> list[str]:
    """``train NAME --dry-run`` with every path a run would create under ``tmp_path``."""
    cfg = RECIPES[name][1]
    args = ["train", name, "--dry-run", "--run-dir", str(tmp_path / "run")]
    if cfg.model.build_tiny_if_missing:
        args += ["--model.path", str(tmp_path / "tiny-model")]
    if cfg.data.generate_toy_task:
        args += ["--data.train-file", str(tmp_path / "train.json")]
    if cfg.data.generate_toy_code:
        args += ["--data.code-file", str(tmp_path / "code.jsonl")]
    return args


@pytest.mark.parametrize("name", list(RECIPES))
def test_dry_run_prints_layout_memory_and_batches_and_builds_nothing(name, tmp_path):
    out = orz_cli_here(*_dry_run_args(name, tmp_path))
    assert out.returncode == 0, out.stderr[-3000:]
    for line in PLAN_LINES:
        assert line in out.stdout, line
    if RECIPES[name][1].layout.gpus_per_node > 0:
        assert "fits in 80.0 GiB" in out.stdout or "DOES NOT FIT in 80.0 GiB" in out.stdout
    else:
        assert "fits in" in out.stdout and "GiB per machine, shared by 1 process(es)" in out.stdout
    # No run directory, tiny model or generated data: nothing at all.
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "name, ranks, engines, tp",
    [("orz-0.5b", 4, 4, 1), ("orz-1.5b", 4, 4, 1), ("orz-7b", 16, 16, 1), ("orz-32b", 64, 16, 4)],
)
def test_orz_recipes_place_training_ranks_and_engines_on_their_gpus(name, ranks, engines, tp):
    run = plan(RECIPES[name][1])
    assert (run.training_ranks, run.vllm_engines, run.vllm_tensor_parallel) == (ranks, engines, tp)
    assert run.training_ranks + engines * tp == run.nodes * run.gpus_per_node
    # Every engine's KV cache holds full-length sequences, and the engines share the step's responses.
    assert run.kv_cache.sequences_at_once >= 1
    assert run.kv_cache.responses * engines == run.batches.responses


def test_orz_7b_batches_per_rank():
    b = plan(RECIPES["orz-7b"][1]).batches
    assert (b.responses, b.mini_batch(1), b.per_rank(1), b.accumulation(1)) == (8192, 8192, 512, 256)
    assert (b.mini_batch(12), b.per_rank(12), b.accumulation(12)) == (683, 43, 22)


@pytest.mark.parametrize("name", ORZ)
def test_orz_recipe_fits_its_gpus(name):
    run = plan(RECIPES[name][1])
    assert run.fits, format_plan(run)  # the training GPUs and the engines' GPUs


@pytest.mark.parametrize("name", ["orz-7b", "orz-32b"])
def test_orz_7b_and_32b_fit_only_with_activation_checkpointing(name):
    cfg = RECIPES[name][1]
    assert cfg.ppo.activation_checkpointing
    text = format_plan(plan(cfg))
    assert "layers (activation checkpointing)" in text
    assert "--ppo.activation-checkpointing" not in text  # no hint where it is on
    # Without it not even one sequence per micro-batch fits; the plan says so, and names the flag.
    off = plan(replace(cfg, ppo=replace(cfg.ppo, micro_batch_size=1, activation_checkpointing=False)))
    text = format_plan(off)
    assert not off.memory[0].fits
    assert "layers (no checkpointing)" in text and "DOES NOT FIT in 80.0 GiB" in text
    assert off.checkpointed_training_bytes <= cfg.layout.gpu_memory_gib * GIB
    assert "total with --ppo.activation-checkpointing" in text


def test_dry_run_of_orz_7b_without_activation_checkpointing_does_not_fit():
    out = orz_cli_here("train", "orz-7b", "--dry-run", "--ppo.no-activation-checkpointing")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "DOES NOT FIT in 80.0 GiB" in out.stdout
    assert "total with --ppo.activation-checkpointing" in out.stdout


def test_over_large_micro_batch_reports_does_not_fit():
    cfg = RECIPES["orz-1.5b"][1]
    run = plan(replace(cfg, ppo=replace(cfg.ppo, micro_batch_size=8)))
    assert not run.fits
    assert "DOES NOT FIT in 80.0 GiB" in format_plan(run)


def test_in_process_engine_shares_the_one_training_gpu():
    cfg = replace(RECIPES["orz-0.5b"][1], layout=LayoutConfig(nodes=1, gpus_per_node=8, vllm_engines=0))
    run = plan(cfg)
    assert run.training_ranks == 1
    assert len(run.memory) == 1  # no GPU of the engine's own
    assert any(t.name.startswith("vLLM engine in this process") for t in run.memory[0].terms)
    assert "7 of 8 GPUs idle" in format_plan(run)


@pytest.mark.parametrize(
    "layout, message",
    [
        (LayoutConfig(nodes=2, gpus_per_node=8, vllm_engines=0), "with layout.vllm_engines = 0"),
        (LayoutConfig(nodes=1, gpus_per_node=8, vllm_engines=8), "leave none of the 8 GPUs"),
        (LayoutConfig(nodes=2, gpus_per_node=4, vllm_engines=1, vllm_tensor_parallel=8), "stays on one node"),
    ],
)
def test_layout_that_cannot_be_placed_is_one_clear_error(layout, message):
    with pytest.raises(ValueError, match=message):
        plan(replace(RECIPES["orz-7b"][1], layout=layout))


def test_zero_micro_batch_is_one_clear_error():
    cfg = RECIPES["orz-7b"][1]
    with pytest.raises(ValueError, match="ppo.micro_batch_size = 0: must be at least 1"):
        plan(replace(cfg, ppo=replace(cfg.ppo, micro_batch_size=0)))


def test_dry_run_of_an_unknown_model_names_it_without_a_traceback():
    out = orz_cli_here("train", "orz-7b", "--dry-run", "--model.path", "someone/unknown-model")
    assert out.returncode == 1
    assert "orz-rl: error: model.path 'someone/unknown-model'" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_critic_free_run_plans_no_critic_states_and_no_critic_steps():
    cfg = RECIPES["orz-7b"][1]
    with_critic = plan(cfg)
    grpo = plan(replace(cfg, ppo=replace(cfg.ppo, advantage="grpo")))
    n, ranks = critic_parameters(with_critic.dims), with_critic.training_ranks
    d = 2  # bf16
    # Parameters, gradients and AdamW's two moments of the critic, sharded over the ranks.
    assert with_critic.memory[0].total - grpo.memory[0].total == 4 * n * d // ranks
    assert not any("critic" in t.name for t in grpo.memory[0].terms)
    text = format_plan(grpo)
    assert "no critic (ppo.advantage)" in text and "critic mini-batch" not in text
    assert "critic mini-batch" in format_plan(with_critic)


def test_a_kl_term_plans_the_frozen_reference_beside_the_actor():
    cfg = RECIPES["orz-7b"][1]
    base = plan(cfg)
    kl = plan(replace(cfg, ppo=replace(cfg.ppo, kl_coef=0.001)))
    n, ranks = actor_parameters(base.dims), base.training_ranks
    # Parameters only: frozen, it has no gradients and no optimiser state.
    assert kl.memory[0].total - base.memory[0].total == n * 2 // ranks
    assert "reference 7.62B (KL term)" in format_plan(kl) and "reference" not in format_plan(base)


def test_a_cpu_plan_holds_the_real_05b_shape_against_the_machines_memory():
    # ORZ-0.5B's shape at 4 x 4 responses of 512 tokens in one CPU process: 24.5 GiB planned, 20.8
    # with activation checkpointing; a 23.5 GiB machine holds only the second.
    cfg = replace(
        RECIPES["cpu-default"][1],
        model=replace(RECIPES["cpu-default"][1].model, path="Qwen/Qwen2.5-0.5B", build_tiny_if_missing=False),
        rollout=replace(
            RECIPES["cpu-default"][1].rollout,
            prompts_per_step=4, samples_per_prompt=4, max_new_tokens=512, max_prompt_tokens=256,
        ),
        ppo=replace(RECIPES["cpu-default"][1].ppo, micro_batch_size=2),
    )  # fmt: skip
    machine = int(23.5 * GIB)
    off = plan(cfg, host_memory=machine)
    on = plan(replace(cfg, ppo=replace(cfg.ppo, activation_checkpointing=True)), host_memory=machine)
    assert not off.fits and on.fits
    assert off.memory[0].capacity == machine and off.memory[0].total > machine > on.memory[0].total
    assert "DOES NOT FIT in 23.5 GiB" in format_plan(off) and "fits in 23.5 GiB" in format_plan(on)
    # Two processes on the machine (a rank and an engine of its own) share it.
    two = replace(
        cfg, layout=replace(cfg.layout, vllm_engines=1), rollout=replace(cfg.rollout, backend="vllm")
    )
    assert all(m.capacity == machine // 2 for m in plan(two, host_memory=machine).memory)
