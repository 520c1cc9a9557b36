"""Generation throughput: vLLM against transformers' ``generate``, same prompts, same run.

    python bench/generation.py [--model artifacts/tiny-qwen2] [--samples 8] [--max-new-tokens 32]

Both backends sample the CPU default's prompts (every ``a + b`` question of the
recipe, ``--samples`` times each) with ORZ's parameters (temperature 1, top_p 1,
no top_k, the stop strings) and the same number of torch threads. Two rows each:
the engine called directly, and through the TorchRL wrapper that the collector
uses (which adds TorchRL's output conversion). Each figure is the median of
``--repeats`` timed runs after one warm-up run; tokens are the generated ones
(up to and including the stop string or EOS).

The tiny model answers in ~20 tokens, where per-step overheads dominate. A last
pair of rows forces ``--long-new-tokens`` tokens per response (EOS and stop
strings ignored, one timed run) to show the engines on ORZ-like lengths.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import tyro
from tensordict import NonTensorStack, TensorDict, set_list_to_stack

from orz_rl.models.loading import load_causal_lm, load_tokenizer
from orz_rl.problems.prompts import render_prompt
from orz_rl.problems.toy_task import addition_problems
from orz_rl.recipes.cpu_default import CPU_DEFAULT
from orz_rl.rollout.engines import make_vllm_engine
from orz_rl.rollout.policies import Sampling, make_transformers_policy, make_vllm_policy

from timing import timed


@dataclass(frozen=True)
class Args:
    """What to benchmark."""

    model: Path = Path(CPU_DEFAULT.model.path)
    """The model directory (built as the CPU default's if missing)."""
    samples: int = CPU_DEFAULT.rollout.samples_per_prompt
    """Responses per prompt."""
    max_new_tokens: int = CPU_DEFAULT.rollout.max_new_tokens
    """Response length limit."""
    repeats: int = 3
    """Timed runs per row (the median is reported)."""
    long_new_tokens: int = 512
    """Forced response length of the long rows (0: skip them)."""


def main(args: Args) -> None:
    set_list_to_stack(True).set()
    if not args.model.is_dir():
        from orz_rl.models.tiny import TinyModelConfig, build

        build(TinyModelConfig(out=args.model))
    tok = load_tokenizer(str(args.model))
    model = load_causal_lm(str(args.model)).eval()
    llm = make_vllm_engine(str(args.model), dtype="float32", seed=0)
    prompts = [render_prompt(q, tok.bos_token) for q, _ in addition_problems(max_operand=5)]
    prompts = [p for p in prompts for _ in range(args.samples)]
    n = args.max_new_tokens
    print(f"{len(prompts)} prompts, max {n} new tokens, {torch.get_num_threads()} torch threads")

    from vllm import SamplingParams

    sampling = Sampling(max_new_tokens=n)  # ORZ's: temperature 1, top_p 1, no top-k, the stop strings
    stop = list(sampling.stop_strings)
    params = SamplingParams(
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        max_tokens=n,
        stop=stop,
        include_stop_str_in_output=True,
        logprobs=0,
    )

    def vllm_engine() -> int:
        outs = llm.generate(prompts, params, use_tqdm=False)
        return sum(len(o.outputs[0].token_ids) for o in outs)

    batch = tok(prompts, return_tensors="pt", padding=True)

    @torch.no_grad()
    def transformers_generate() -> int:
        out = model.generate(
            **batch,
            do_sample=True,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=None,
            max_new_tokens=n,
            stop_strings=stop,
            tokenizer=tok,
            pad_token_id=tok.pad_token_id,
        )
        return int((out[:, batch["input_ids"].shape[1] :] != tok.pad_token_id).sum())

    def through(policy):
        def run() -> int:
            td = TensorDict({"text": {"prompt": NonTensorStack(*prompts)}}, batch_size=[len(prompts)])
            out = policy(td)
            return sum(t.numel() for t in out.get(("tokens", "response"), as_list=True))

        return run

    reps = args.repeats
    rows = {
        "vLLM engine": timed(vllm_engine, reps),
        "transformers generate": timed(transformers_generate, reps),
        "vLLM via TorchRL vLLMWrapper": timed(through(make_vllm_policy(llm, tok, sampling)), reps),
        "transformers via TorchRL TransformersWrapper": timed(
            through(make_transformers_policy(model, tok, sampling)), reps
        ),
    }
    long = args.long_new_tokens
    if long > 0:
        forced = SamplingParams(temperature=1.0, top_p=1.0, max_tokens=long, ignore_eos=True, logprobs=0)

        def vllm_long() -> int:
            outs = llm.generate(prompts, forced, use_tqdm=False)
            return sum(len(o.outputs[0].token_ids) for o in outs)

        @torch.no_grad()
        def transformers_long() -> int:
            out = model.generate(
                **batch,
                do_sample=True,
                top_k=None,
                max_new_tokens=long,
                min_new_tokens=long,
                pad_token_id=tok.pad_token_id,
            )
            return out.shape[0] * (out.shape[1] - batch["input_ids"].shape[1])

        # The short rows warmed both engines up.
        rows[f"vLLM engine, {long} tokens each"] = timed(vllm_long, 1, warm_up=False)
        rows[f"transformers generate, {long} tokens each"] = timed(transformers_long, 1, warm_up=False)

    print(f"{'backend':46} {'seconds':>8} {'tokens':>7} {'tokens/s':>9}")
    rate = {}
    for name, (seconds, tokens) in rows.items():
        rate[name] = tokens / seconds
        print(f"{name:46} {seconds:8.3f} {tokens:7d} {rate[name]:9.0f}")
    print(f"ratio vLLM / transformers, engines:  {rate['vLLM engine'] / rate['transformers generate']:.2f}x")
    wrapped = rate["vLLM via TorchRL vLLMWrapper"] / rate["transformers via TorchRL TransformersWrapper"]
    print(f"ratio vLLM / transformers, wrappers: {wrapped:.2f}x")
    if long > 0:
        ratio = rate[f"vLLM engine, {long} tokens each"] / rate[f"transformers generate, {long} tokens each"]
        print(f"ratio vLLM / transformers, {long} tokens each: {ratio:.2f}x")


if __name__ == "__main__":
    main(tyro.cli(Args))
