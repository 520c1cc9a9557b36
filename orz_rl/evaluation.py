"""Evaluation as ORZ reports it: avg@k and pass@k of sampled answers on benchmark sets.

``orz-rl eval --model PATH --benchmarks math500 aime2024 gpqa_diamond --samples 16``
samples ``k`` responses per question with the ORZ prompt template and sampling
(temperature 1, top_p 1, the stop strings), grades them with the math reward,
and reports per benchmark:

* ``avg@k``: the mean over questions of the share of correct samples (ORZ's
  headline figure, avg@16);
* ``pass@k``: the share of questions with at least one correct sample;
* the mean response length in tokens and the share of responses cut by the
  length limit.

Any TorchRL text policy evaluates: it reads ``("text", "prompt")`` and writes
``("text", "response")`` and ``("tokens", "response")`` (and optionally
``finish_reason``), like the generation policies of :mod:`orz_rl.generation`.
A question whose prompt does not fit the model with the response budget is
not generated: its samples score 0 and are counted as ``too_long``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from tensordict import NonTensorStack, TensorDict

from orz_rl.batch_grader import MathGrader
from orz_rl.data import Problem, load_problems
from orz_rl.grader import extract_answer
from orz_rl.prompt import STOP_STRINGS, render_prompt
from orz_rl.text_env import as_strings, finish_reasons

#: The ORZ evaluation files shipped beside the repository (``shared/data/orz_eval``).
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "orz_eval"
KNOWN = ("math500", "aime2024", "gpqa_diamond")


class UnknownBenchmarkError(ValueError):
    """A benchmark that is neither a known name nor an existing file."""


def resolve_benchmark(name_or_path: str, data_dir: Path = DEFAULT_DATA_DIR) -> tuple[str, Path]:
    """``(name, file)`` of a benchmark given by name (``math500``) or by file path."""
    path = Path(name_or_path)
    if path.suffix in (".json", ".jsonl"):
        if not path.is_file():
            raise FileNotFoundError(f"benchmark file {str(path)!r} does not exist")
        return path.stem, path
    if name_or_path not in KNOWN:
        raise UnknownBenchmarkError(
            f"unknown benchmark {name_or_path!r}; known: {', '.join(KNOWN)} (or a .json/.jsonl file path)"
        )
    return name_or_path, data_dir / f"{name_or_path}.json"


@dataclass(frozen=True)
class EvalConfig:
    """``orz-rl eval``: sample, grade and report avg@k / pass@k."""

    model: str = "artifacts/tiny-qwen2"
    """Hugging Face model directory to evaluate (a training checkpoint's ``actor`` works)."""
    benchmarks: tuple[str, ...] = KNOWN
    """Benchmark names (math500, aime2024, gpqa_diamond) or paths of files in the ORZ eval format."""
    data_dir: Path = DEFAULT_DATA_DIR
    """Where the named benchmarks' files are."""
    samples: int = 16
    """Responses sampled per question (ORZ reports avg@16)."""
    max_new_tokens: int = 8000
    """Response length limit; a response cut by it scores 0."""
    temperature: float = 1.0
    """Sampling temperature (ORZ: 1.0)."""
    top_p: float = 1.0
    """Nucleus threshold (ORZ: 1.0)."""
    backend: Literal["auto", "vllm", "transformers"] = "auto"
    """Generation backend: vllm (auto, wherever it imports) or transformers."""
    dtype: str = "float32"
    """Parameter dtype of the evaluated model."""
    questions_per_batch: int = 64
    """Questions generated together (each with all its samples)."""
    seed: int = 0
    """Seed of the sampling."""
    out_dir: Path = Path("runs/eval")
    """Where ``eval.json`` (the figures) and ``samples.jsonl`` (every sample) go."""
    progress: bool = True
    """Show a progress bar over questions x samples."""
    grader_timeout: float = 5.0
    """Seconds one answer check may take."""
    limit: int = 0
    """Evaluate only the first this many questions of each benchmark (0: all)."""


def _pass_and_avg(correct: torch.Tensor) -> tuple[float, float]:
    """``(avg@k, pass@k)`` of a ``[questions, k]`` boolean table."""
    return correct.float().mean().item(), correct.any(-1).float().mean().item()


def _record(
    item: int, sample: int, prompt: str, truth: str, response: str | None, reason: str, correct: bool
) -> dict:
    """One line of ``samples.jsonl``."""
    answer = extract_answer(response) if response is not None else None
    return {
        "item": item,
        "sample": sample,
        "prompt": prompt,
        "response": response,
        "answer": answer,
        "truth": truth,
        "correct": correct,
        "finish_reason": reason,
    }


def evaluate_benchmark(
    policy,
    tokenizer,
    problems: list[Problem],
    *,
    samples: int,
    max_prompt_tokens: int,
    grader: MathGrader,
    questions_per_batch: int = 64,
    progress=None,
) -> tuple[dict[str, float], list[dict]]:
    """Sample, grade and summarise one benchmark: ``(figures, one record per sample)``."""
    correct = torch.zeros(len(problems), samples, dtype=torch.bool)
    lengths, cut, too_long = [], 0, 0
    records: list[dict] = []
    for start in range(0, len(problems), questions_per_batch):
        chunk = list(enumerate(problems[start : start + questions_per_batch], start=start))
        prompts = {i: render_prompt(p.question, tokenizer.bos_token) for i, p in chunk}
        fits = [(i, p) for i, p in chunk if len(tokenizer(prompts[i])["input_ids"]) <= max_prompt_tokens]
        for i in sorted(set(prompts) - {i for i, _ in fits}):
            too_long += 1
            records += [
                _record(i, s, prompts[i], problems[i].answer, None, "too_long", False) for s in range(samples)
            ]
        if progress is not None:
            progress.update((len(chunk) - len(fits)) * samples)
        if not fits:
            continue
        rows = [(i, p, s) for i, p in fits for s in range(samples)]
        td = TensorDict({"text": {"prompt": NonTensorStack(*[prompts[i] for i, _, _ in rows])}}, [len(rows)])
        out = policy(td)
        texts = as_strings(out.get(("text", "response")))
        tokens = out.get(("tokens", "response"), as_list=True)
        reasons = finish_reasons(
            out, texts, STOP_STRINGS + ((tokenizer.eos_token,) if tokenizer.eos_token else ())
        )
        rewards = grader.score(
            texts,
            [r == "stop" for r in reasons],
            [p.answer for _, p, _ in rows],
            [p.choices for _, p, _ in rows],
        )
        for (i, p, s), text, ids, reason, reward in zip(
            rows, texts, tokens, reasons, rewards.tolist(), strict=True
        ):
            correct[i, s] = reward > 0.5
            lengths.append(len(ids))
            cut += reason != "stop"
            records.append(_record(i, s, prompts[i], p.answer, text, reason, reward > 0.5))
        if progress is not None:
            progress.update(len(rows))
    avg, pass_k = _pass_and_avg(correct)
    n_generated = max(len(lengths), 1)
    figures = {
        f"avg@{samples}": avg,
        f"pass@{samples}": pass_k,
        "mean_response_tokens": sum(lengths) / n_generated,
        "cut_share": cut / n_generated,
        "questions": float(len(problems)),
        "too_long": float(too_long),
    }
    return figures, sorted(records, key=lambda r: (r["item"], r["sample"]))


def markdown_table(results: dict[str, dict[str, float]], samples: int) -> str:
    """One row per benchmark: avg@k, pass@k, mean response tokens, cut share."""
    lines = [
        f"| benchmark | avg@{samples} | pass@{samples} | mean response tokens | cut share | questions |",
        "|---|---|---|---|---|---|",
    ]
    for name, f in results.items():
        lines.append(
            f"| {name} | {100 * f[f'avg@{samples}']:.1f} | {100 * f[f'pass@{samples}']:.1f} | "
            f"{f['mean_response_tokens']:.1f} | {f['cut_share']:.3f} | {int(f['questions'])} |"
        )
    return "\n".join(lines)


def run(cfg: EvalConfig) -> dict[str, dict[str, float]]:
    """``orz-rl eval``: every benchmark of ``cfg``, written to ``cfg.out_dir``."""
    from tqdm import tqdm

    from orz_rl.generation import (
        Sampling,
        make_transformers_policy,
        make_vllm_engine,
        make_vllm_policy,
        resolve_backend,
    )
    from orz_rl.modeling import load_causal_lm, load_tokenizer

    # Benchmarks first: a bad name or a malformed file is reported before any model loads.
    benchmarks = {}
    for spec in cfg.benchmarks:
        name, path = resolve_benchmark(spec, cfg.data_dir)
        problems = load_problems(path)
        benchmarks[name] = problems[: cfg.limit] if cfg.limit > 0 else problems
    torch.manual_seed(cfg.seed)
    tokenizer = load_tokenizer(cfg.model)
    sampling = Sampling(cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p)
    model = load_causal_lm(cfg.model, dtype=getattr(torch, cfg.dtype)).eval()
    max_positions = getattr(model.config, "max_position_embeddings", 1 << 30)
    max_prompt_tokens = max_positions - cfg.max_new_tokens
    if max_prompt_tokens <= 0:
        raise ValueError(
            f"max_new_tokens = {cfg.max_new_tokens} leaves no room for a prompt in the "
            f"model's {max_positions} positions ({cfg.model})"
        )
    if resolve_backend(cfg.backend) == "vllm":
        llm = make_vllm_engine(cfg.model, dtype=cfg.dtype, seed=cfg.seed, max_model_len=max_positions)
        policy = make_vllm_policy(llm, tokenizer, sampling)
    else:
        policy = make_transformers_policy(model, tokenizer, sampling)

    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    total = sum(len(p) for p in benchmarks.values()) * cfg.samples
    results: dict[str, dict[str, float]] = {}
    with (
        MathGrader(timeout=cfg.grader_timeout) as grader,
        tqdm(total=total, desc="eval", disable=not cfg.progress) as bar,
        (cfg.out_dir / "samples.jsonl").open("w") as samples_file,
    ):
        for name, problems in benchmarks.items():
            figures, records = evaluate_benchmark(
                policy,
                tokenizer,
                problems,
                samples=cfg.samples,
                max_prompt_tokens=max_prompt_tokens,
                grader=grader,
                questions_per_batch=cfg.questions_per_batch,
                progress=bar,
            )
            results[name] = figures
            for record in records:
                samples_file.write(json.dumps({"benchmark": name, **record}) + "\n")
    summary = {"model": cfg.model, "samples": cfg.samples, "seed": cfg.seed, "results": results}
    (cfg.out_dir / "eval.json").write_text(json.dumps(summary, indent=2))
    print(markdown_table(results, cfg.samples))
    print(f"figures: {cfg.out_dir / 'eval.json'}; every sample: {cfg.out_dir / 'samples.jsonl'}")
    return results
