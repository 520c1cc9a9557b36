"""Evaluation as ORZ reports it: avg@n, pass@k and maj@k of sampled answers on benchmark sets.

``orz-rl eval --model PATH --benchmarks math500 aime2024 gpqa_diamond --samples 16 --pass-k 1 4 16``
samples ``n`` responses per question with the task's prompt and ORZ's sampling
(temperature 1, top_p 1, the stop strings), scores them with the task's own env (its
reward rule, as in training), and reports per benchmark (:mod:`orz_rl.tools.pass_at_k`):

* ``avg@n``: the mean over questions of the share of correct samples (ORZ's
  headline figure, avg@16);
* ``pass@k`` for each asked ``k``: the unbiased estimator of Chen et al. (2021);
* ``maj@k`` for each asked ``k``, where the task extracts answers (math, multiple choice):
  majority vote over the first ``k`` samples' answers, pooled over answers the math grader calls
  equal (``0.5`` and ``\\frac{1}{2}``); a multiple-choice answer votes for the option it names;
* the mean response length in tokens and the share of responses cut by the
  length limit;
* each figure again per breakdown of the benchmark (MATH-500's level and subject, MMLU's subject,
  MMLU-Pro's category, GPQA's domain, LiveCodeBench's difficulty), the headline being over all
  questions alike (micro), as each benchmark's paper reports it.

``eval.json`` records what the figures came from (:mod:`orz_rl.tools.eval_record`), and
``--rerun`` runs it again; ``--suite orz`` runs ORZ's Table 4 (:mod:`orz_rl.tools.suites`).

A sample is correct when its reward is above 0.5. Any TorchRL text policy evaluates (the
policies of :mod:`orz_rl.rollout.policies` are two), with any task whose env writes
``prompt_id`` (:mod:`orz_rl.rollout.collector`). A question whose prompt does not fit the
model with the response budget is not generated: its samples score 0 and are counted as
``too_long``.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import torch
from tensordict import TensorDictBase
from torchrl.envs import EnvBase

from orz_rl import keys
from orz_rl.config import ToolConfig, bound_problems, raise_if_any
from orz_rl.envs.python_tool import with_python_tool
from orz_rl.envs.registry import BUILTIN, get_task
from orz_rl.envs.task import EnvArgs, Task
from orz_rl.problems.benchmarks import DATA_DIR, KNOWN, benchmark_files, resolve_benchmarks
from orz_rl.problems.formats import load_any_problems
from orz_rl.rewards.math_answers import named_option
from orz_rl.rewards.services import RewardServices
from orz_rl.rollout.responses import NoPromptIdError, Response, sample_responses
from orz_rl.runtime.atomic_write import folder_problem, refuse_overwrite
from orz_rl.runtime.run_log import jsonable
from orz_rl.tools.eval_config import EvalConfig
from orz_rl.tools.eval_record import benchmark_record, check_unchanged, orz_rl_version, weights_sha256
from orz_rl.tools.pass_at_k import Same, pool_questions, summarise
from orz_rl.tools.suites import SUITES, find_suite, suite_table

#: ORZ's response length limit in evaluation.
ORZ_MAX_NEW_TOKENS = 8000


def published_between(problems: Sequence[Any], since: str = "", until: str = "") -> list[Any]:
    """The problems whose ``date`` (ISO 8601) lies in ``[since, until]`` (either bound empty: open);
    a problem without a date is kept. A date that is not ISO 8601 is a ``ValueError`` naming it."""

    def day(text: str, what: str) -> datetime.date:
        try:
            return datetime.datetime.fromisoformat(text).date()
        except ValueError:
            raise ValueError(f"{what} {text!r} is not an ISO 8601 date (YYYY-MM-DD)") from None

    lo = day(since, "--since") if since else datetime.date.min
    hi = day(until, "--until") if until else datetime.date.max
    kept = []
    for p in problems:
        date = getattr(p, "date", "")
        if not date or lo <= day(date, f"{getattr(p, 'source', '') or 'a problem'}: date") <= hi:
            kept.append(p)
    return kept


def task_for(problems: Sequence[Any]) -> Task:
    """The built-in task that scores ``problems``: ``code`` if each has tests, ``math`` if none
    has, ``mixed`` otherwise."""
    coded = {getattr(p, "tests", None) is not None for p in problems}
    return get_task("mixed" if len(coded) > 1 else "code" if coded == {True} else "math")


@dataclass(frozen=True)
class Benchmark:
    """One benchmark of a run: its file, the task that scores it, and the problems evaluated."""

    path: Path
    """The file it was read from, or the folder of its files."""
    files: tuple[Path, ...]
    """Its data files (one, or a folder's)."""
    task: Task
    """The task whose env renders and scores its problems."""
    problems: list[Any]
    """The problems evaluated (after ``--since``/``--until`` and ``--limit``)."""
    items: int
    """How many problems the file holds."""


def read_benchmarks(
    task: Task | None,
    specs: Sequence[str],
    limit: int = 0,
    data_dir: Path = DATA_DIR,
    since: str = "",
    until: str = "",
) -> dict[str, Benchmark]:
    """Each benchmark by name (two of one name are an error naming both files): read with
    ``task``'s loader, or (``None``) in any format and scored by :func:`task_for`'s task;
    published in ``[since, until]`` (:func:`published_between`), the first ``limit`` (0: all)."""
    out = {}
    load = task.load_benchmark if task is not None else load_any_problems
    for name, path in resolve_benchmarks(specs, data_dir).items():
        files = tuple(benchmark_files(path))
        every = [problem for file in files for problem in load(file)]
        problems = published_between(every, since, until)[: limit or None]
        out[name] = Benchmark(
            path, files, task if task is not None else task_for(problems), problems, len(every)
        )
    return out


def training_benchmarks(task: Task, specs: Sequence[str], limit: int = 0) -> dict[str, tuple[Task, list]]:
    """The benchmarks a training run evaluates on: under a built-in task (math, code, mixed) each
    scored by the task of its problems, under a task of one's own all by that task."""
    read = read_benchmarks(None if task.name in BUILTIN else task, specs, limit)
    return {name: (b.task, b.problems) for name, b in read.items()}


def _record(
    task: Task,
    item: int,
    sample: int,
    prompt: str,
    problem: Any,
    response: str | None,
    reason: str,
    correct: bool,
) -> dict:
    """One line of ``samples.jsonl``; a multiple-choice item's options as it listed them (GPQA's
    are shuffled per item), so that a figure can be checked against the prompt."""
    extract = task.extract_answer
    record = {
        "item": item,
        "sample": sample,
        "prompt": prompt,
        "response": response,
        "answer": extract(response) if extract is not None and response is not None else None,
        "truth": str(problem.answer),
        "correct": correct,
        "finish_reason": reason,
    }
    if getattr(problem, "choices", ()):
        record["choices"] = dict(problem.choices)
    return record


def evaluate_benchmark(
    policy: Callable[[TensorDictBase], TensorDictBase],
    tokenizer,
    task: Task,
    problems: list[Any],
    env_args: Callable[[int, int], EnvArgs],
    *,
    samples: int,
    max_prompt_tokens: int,
    questions_per_batch: int = 64,
    progress=None,
    pass_k: Sequence[int] = (),
    maj_k: Sequence[int] = (),
    same: Same | None = None,
    tool: ToolConfig | None = None,
    turn_tokens: int = 0,
) -> tuple[dict[str, float], list[dict]]:
    """Sample, score and summarise one benchmark: ``(figures, one record per sample)``.

    Each batch of questions is one rollout of the task's env over them, built by
    ``task.make_env`` with ``env_args(questions, samples)``. ``pass_k`` and ``maj_k`` default
    to ``samples``; maj@k only where the task has an answer extractor, its votes pooled over
    answers ``same`` says are equal (the math grader's ``equivalent``; None: equal strings), and
    a multiple-choice answer's vote the letter of the option it names. With ``tool``, each env is
    the task's with the Python tool (turns of ``turn_tokens`` at most), sampled by a tokens-mode
    ``policy``; a response is then a whole trajectory.
    """
    pass_k, maj_k = _checked_ks(samples, pass_k, maj_k)
    tally = _Tally(torch.zeros(len(problems), samples, dtype=torch.bool))
    for start in range(0, len(problems), questions_per_batch):
        chunk = range(start, min(start + questions_per_batch, len(problems)))
        fits = list(chunk)
        if task.render is not None:
            fits = _drop_too_long(tally, task, tokenizer, problems, chunk, samples, max_prompt_tokens)
            if progress is not None:
                progress.update((len(chunk) - len(fits)) * samples)
        if not fits:
            continue
        args = env_args(len(fits), samples)
        env = task.make_env([problems[i] for i in fits], args)
        if tool is not None:
            env = with_python_tool(env, tokenizer, args.services.sandbox, tool, turn_tokens)
        _tally_responses(tally, task, problems, fits, _sample(task, env, policy, tool is not None))
        if progress is not None:
            progress.update(len(fits) * samples)
    tally.records.sort(key=lambda r: (r["item"], r["sample"]))
    return _figures(tally, task, problems, samples, pass_k, maj_k, same), tally.records


def _checked_ks(
    samples: int, pass_k: Sequence[int], maj_k: Sequence[int]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``pass_k`` and ``maj_k`` (each empty: ``(samples,)``), a ``ValueError`` for a k outside 1..samples."""
    pass_k, maj_k = tuple(pass_k) or (samples,), tuple(maj_k) or (samples,)
    for k in (*pass_k, *maj_k):
        if not 1 <= k <= samples:
            raise ValueError(f"pass@{k} / maj@{k} needs 1 <= k <= samples = {samples}")
    return pass_k, maj_k


@dataclass
class _Tally:
    """One benchmark's samples as its batches come in."""

    correct: torch.Tensor
    """``[question, sample]``: whether the sample's reward is above 0.5."""
    records: list[dict] = field(default_factory=list)
    """One :func:`_record` per sample, generated or not."""
    lengths: list[int] = field(default_factory=list)
    """The generated responses' lengths in tokens."""
    cut: int = 0
    """How many generated responses the length limit cut."""
    too_long: int = 0
    """How many questions were not generated: their prompts do not fit."""


def _drop_too_long(
    tally: _Tally,
    task: Task,
    tokenizer,
    problems: list[Any],
    chunk: range,
    samples: int,
    max_prompt_tokens: int,
) -> list[int]:
    """The questions of ``chunk`` whose prompts fit; the others tallied as ``too_long``, scoring 0."""
    prompts = {i: task.render(problems[i], tokenizer.bos_token) for i in chunk}
    fits = [i for i in chunk if len(tokenizer(prompts[i])["input_ids"]) <= max_prompt_tokens]
    for i in sorted(set(chunk) - set(fits)):
        tally.too_long += 1
        tally.records += [
            _record(task, i, s, prompts[i], problems[i], None, "too_long", False) for s in range(samples)
        ]
    return fits


def _sample(
    task: Task, env: EnvBase, policy: Callable[[TensorDictBase], TensorDictBase], multi_turn: bool
) -> list[Response]:
    """One rollout of ``env`` by ``policy``; a ``ValueError`` where the task's env writes no prompt ids."""
    try:
        return sample_responses(env, policy, multi_turn)
    except NoPromptIdError:
        raise ValueError(
            f"task {task.name!r}: its env writes no {keys.PROMPT_ID!r}, which evaluation needs to "
            "tell the questions' samples apart (the collector's contract: orz_rl.rollout.collector)"
        ) from None


def _tally_responses(
    tally: _Tally, task: Task, problems: list[Any], fits: list[int], responses: list[Response]
) -> None:
    """Adds a batch's responses to ``tally``, each as the next sample of its question."""
    drawn: dict[int, int] = {}
    for r in responses:
        i = fits[r.prompt_id]  # the env's prompt ids index the problems it was given
        s = drawn[i] = drawn.get(i, -1) + 1
        tally.correct[i, s] = r.reward > 0.5
        tally.lengths.append(r.tokens)
        tally.cut += r.finish_reason != "stop"
        tally.records.append(
            _record(task, i, s, r.prompt, problems[i], r.text, r.finish_reason, r.reward > 0.5)
        )


def _figures(
    tally: _Tally,
    task: Task,
    problems: list[Any],
    samples: int,
    pass_k: tuple[int, ...],
    maj_k: tuple[int, ...],
    same: Same | None,
) -> dict[str, float]:
    """The benchmark's figures from its sorted ``tally``: the headline, then each breakdown's."""
    records = tally.records
    answers = [[r["answer"] for r in records[i * samples : (i + 1) * samples]] for i in range(len(problems))]
    votes = maj_k if task.extract_answer is not None and task.majority_vote else ()
    if votes:
        answers = vote_keys(problems, answers, same)
    n_generated = max(len(tally.lengths), 1)
    figures = summarise(tally.correct.tolist(), pass_k, votes, answers) | {
        "mean_response_tokens": sum(tally.lengths) / n_generated,
        "cut_share": tally.cut / n_generated,
        "questions": float(len(problems)),
        "too_long": float(tally.too_long),
    }
    return figures | _breakdown_figures(problems, tally.correct, pass_k, votes, answers)


def _breakdown_figures(
    problems: list[Any],
    correct: torch.Tensor,
    pass_k: tuple[int, ...],
    votes: tuple[int, ...],
    answers: list[list],
) -> dict[str, float]:
    """A breakdown row per group of the problems, as ``"level=3/avg@n"``, ..., in natural order."""
    # MATH-500's levels and subjects, MMLU's subjects, LiveCodeBench's difficulties; the headline is
    # over all questions alike.
    members: dict[str, list[int]] = {}
    for i, p in enumerate(problems):
        for breakdown, value in getattr(p, "groups", ()):
            members.setdefault(f"{breakdown}={value.replace('/', '-')}", []).append(i)
    figures: dict[str, float] = {}
    for group in sorted(members, key=_natural):
        idx = members[group]
        part = summarise([correct[i].tolist() for i in idx], pass_k, votes, [answers[i] for i in idx])
        figures |= {f"{group}/{k}": v for k, v in part.items()} | {f"{group}/questions": float(len(idx))}
    return figures


def vote_keys(problems: Sequence[Any], answers: list[list[str | None]], same: Same | None) -> list[list]:
    """What each answer votes for in maj@k: a multiple-choice answer the letter of the one option it
    names (:func:`~orz_rl.rewards.math_answers.named_option`; none: no vote), any other the vote of
    the answers ``same`` pools it with (:func:`~orz_rl.tools.pass_at_k.pool_questions`, one batch
    for the whole benchmark)."""
    keyed: list[list] = [list(row) for row in answers]
    free = []
    for i, (problem, row) in enumerate(zip(problems, answers, strict=True)):
        choices = getattr(problem, "choices", ())
        if choices:
            keyed[i] = [named_option(a, choices) if a is not None else None for a in row]
        else:
            free.append(i)
    for i, pooled in zip(free, pool_questions([answers[i] for i in free], same), strict=True):
        keyed[i] = [None if v is None else f"vote {v}" for v in pooled]
    return keyed


def _natural(text: str) -> list:
    """Sort key that puts ``level=2`` before ``level=10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def markdown_table(results: dict[str, dict[str, float]]) -> str:
    """One row per benchmark: avg@n, each pass@k and maj@k (in %; "-" where a benchmark has none),
    mean response tokens, cut share, questions; then a row per group of its problems (figures
    ``<breakdown>=<value>/...``: MATH-500's levels, LiveCodeBench's difficulties), named
    ``benchmark (breakdown=value)``."""
    figures = [
        k for k in dict.fromkeys(k for f in results.values() for k in f) if k[:4] in ("avg@", "pass", "maj@")
    ]
    lines = [
        f"| benchmark | {' | '.join(figures)} | mean response tokens | cut share | questions |",
        "|---" * (len(figures) + 4) + "|",
    ]

    def cells(f: dict[str, float], prefix: str = "") -> str:
        return " | ".join(f"{100 * f[prefix + k]:.1f}" if prefix + k in f else "-" for k in figures)

    for name, f in results.items():
        tail = f"{f['mean_response_tokens']:.1f} | {f['cut_share']:.3f} | {int(f['questions'])}"
        lines.append(f"| {name} | {cells(f)} | {tail} |")
        for group in dict.fromkeys(k.split("/")[0] for k in f if "/" in k):
            questions = int(f[f"{group}/questions"])
            lines.append(f"| {name} ({group}) | {cells(f, group + '/')} | - | - | {questions} |")
    return "\n".join(lines)


#: The fields ``--rerun`` takes from the command line rather than from the record.
_RERUN_OWN = ("rerun", "out_dir", "progress")


def rerun_config(cfg: EvalConfig) -> EvalConfig:
    """The configuration an earlier run's ``eval.json`` (``cfg.rerun``) records, writing to
    ``cfg.out_dir``; a ``ValueError`` naming what is wrong (another field given, the record's own
    folder as the output, a benchmark file or the weights changed since)."""
    assert cfg.rerun is not None
    default = EvalConfig()
    given = [
        f.name
        for f in fields(cfg)
        if f.name not in _RERUN_OWN and getattr(cfg, f.name) != getattr(default, f.name)
    ]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise ValueError(
            f"--rerun takes every setting from {cfg.rerun}; only --out-dir and --progress go with it, "
            f"not {flags}"
        )
    if cfg.out_dir.resolve() == cfg.rerun.resolve().parent:
        raise ValueError(
            f"--rerun {cfg.rerun}: --out-dir {cfg.out_dir} would overwrite the run it repeats; name another"
        )
    try:
        record = json.loads(cfg.rerun.read_text())
        settings, benchmarks = record["config"], record["benchmarks"]
    except FileNotFoundError:
        raise FileNotFoundError(f"--rerun {cfg.rerun}: no such file") from None
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise ValueError(
            f"--rerun {cfg.rerun}: not an eval.json of orz-rl eval ({type(e).__name__}: {e})"
        ) from None
    check_unchanged(record, cfg.rerun)
    values = {}
    for f in fields(EvalConfig):
        if f.name in _RERUN_OWN or f.name not in settings:
            continue
        default_value, value = getattr(default, f.name), settings[f.name]
        if isinstance(default_value, Path | tuple):  # JSON wrote them as a string and a list
            value = type(default_value)(value)
        elif is_dataclass(default_value):  # and a dataclass as its fields
            value = type(default_value)(**value)
        values[f.name] = value
    values["benchmarks"] = tuple(f"{name}={b['path']}" for name, b in benchmarks.items())
    return replace(EvalConfig(**values), out_dir=cfg.out_dir, progress=cfg.progress)


def run(cfg: EvalConfig) -> dict[str, dict[str, float]]:
    """``orz-rl eval``: every benchmark of ``cfg``, written to ``cfg.out_dir``; ``eval.json``
    records what it ran on (:mod:`orz_rl.tools.eval_record`)."""
    from orz_rl.models.loading import load_causal_lm, load_tokenizer
    from orz_rl.problems.prompts import STOP_STRINGS, TOOL_STOP_STRINGS
    from orz_rl.rollout.engines import resolve_backend
    from orz_rl.rollout.generation import start_sampling
    from orz_rl.rollout.policies import Sampling

    if cfg.rerun is not None:
        cfg = rerun_config(cfg)
    benchmarks, notes = _checked_benchmarks(cfg)
    torch.manual_seed(cfg.seed)
    tokenizer = load_tokenizer(cfg.model)
    model = load_causal_lm(cfg.model, dtype=getattr(torch, cfg.dtype)).eval()
    max_positions, max_new_tokens, max_prompt_tokens = _token_budget(cfg, model)
    tools = cfg.tools != "none"
    stops = TOOL_STOP_STRINGS if tools else STOP_STRINGS
    sampling = Sampling(max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p, stop_strings=stops)
    backend = resolve_backend(cfg.backend, max_new_tokens)
    engine = dict(dtype=cfg.dtype, seed=cfg.seed, max_model_len=max_positions)
    mode = "tokens" if tools else "text"  # with the tool, each turn continues from the ids as sampled
    policy = start_sampling(backend, cfg.model, tokenizer, model, sampling, mode, **engine).policy

    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    # Written beside the final names and renamed at the end: a run that fails leaves an earlier
    # run's samples.jsonl and eval.json as they were, and nothing half-written under their names.
    partial = cfg.out_dir / "samples.jsonl.partial"
    results = _sample_benchmarks(
        cfg, benchmarks, policy, tokenizer, (max_prompt_tokens, max_new_tokens), partial
    )
    summary = _summary(cfg, benchmarks, notes, results, max_new_tokens, backend)
    record_partial = cfg.out_dir / "eval.json.partial"
    record_partial.write_text(json.dumps(summary, indent=2))
    partial.replace(cfg.out_dir / "samples.jsonl")
    record_partial.replace(cfg.out_dir / "eval.json")
    _print_results(cfg, results)
    return results


def _checked_benchmarks(cfg: EvalConfig) -> tuple[dict[str, Benchmark], list[str]]:
    """``cfg``'s benchmarks, read after its settings are checked, and the notes of its suite's search."""
    # Every field in its range before anything is read, loaded or written (--samples 0 once
    # emptied an earlier samples.jsonl after loading the model).
    raise_if_any(bound_problems(cfg) + [p for p in [folder_problem("out_dir", cfg.out_dir)] if p])
    # The task and the benchmarks first: a bad name or a malformed file is reported before any
    # model loads.
    task = None if cfg.task == "auto" else get_task(cfg.task)
    for k in (*cfg.pass_k, *cfg.maj_k):
        if not 1 <= k <= cfg.samples:
            raise ValueError(f"--pass-k / --maj-k: {k} is not between 1 and --samples = {cfg.samples}")
    specs, notes = _benchmark_specs(cfg)
    benchmarks = read_benchmarks(task, specs, cfg.limit, cfg.data_dir, cfg.since, cfg.until)
    read = [file for b in benchmarks.values() for file in b.files]
    for name in ("samples.jsonl", "eval.json"):  # a benchmark file kept in the out dir under one of them
        refuse_overwrite(read, out_dir=cfg.out_dir / name)
    return benchmarks, notes


def _benchmark_specs(cfg: EvalConfig) -> tuple[list[str], list[str]]:
    """The benchmarks to read (``--suite``'s found after those given) and the search's notes, printed."""
    specs, notes = list(cfg.benchmarks), []
    if cfg.suite:
        given = specs if cfg.benchmarks != KNOWN else []
        found, notes = find_suite(
            SUITES[cfg.suite], cfg.data_dir, list(resolve_benchmarks(given, cfg.data_dir))
        )
        specs = given + found
        for note in notes:
            print(f"orz-rl eval --suite {cfg.suite}: {note}")
    return specs, notes


def _token_budget(cfg: EvalConfig, model: torch.nn.Module) -> tuple[int, int, int]:
    """The model's positions, the response limit and the room left for a prompt (none: a ``ValueError``)."""
    max_positions = getattr(model.config, "max_position_embeddings", 1 << 30)
    max_new_tokens = cfg.max_new_tokens or min(ORZ_MAX_NEW_TOKENS, max_positions // 2)
    response, name = max_new_tokens, "max_new_tokens"
    if cfg.tools != "none" and cfg.tool.max_total_tokens > max_new_tokens:  # every turn and tool output
        response, name = cfg.tool.max_total_tokens, "tool.max_total_tokens"
    max_prompt_tokens = max_positions - response
    if max_prompt_tokens <= 0:
        raise ValueError(
            f"{name} = {response} leaves no room for a prompt in the "
            f"model's {max_positions} positions ({cfg.model})"
        )
    return max_positions, max_new_tokens, max_prompt_tokens


def _sample_benchmarks(
    cfg: EvalConfig,
    benchmarks: dict[str, Benchmark],
    policy: Callable[[TensorDictBase], TensorDictBase],
    tokenizer,
    limits: tuple[int, int],
    partial: Path,
) -> dict[str, dict[str, float]]:
    """Each benchmark's figures, every sample written to ``partial`` (removed if the run fails);
    ``limits``: the prompt's and a response's (a turn's, with the tool) tokens."""
    max_prompt_tokens, max_new_tokens = limits
    tool = dict(tool=cfg.tool, turn_tokens=max_new_tokens) if cfg.tools != "none" else {}
    from tqdm import tqdm

    from orz_rl.config import RewardConfig

    total = sum(len(b.problems) for b in benchmarks.values()) * cfg.samples
    results: dict[str, dict[str, float]] = {}
    try:
        with (
            RewardServices(RewardConfig(timeout=cfg.grader_timeout)) as services,
            tqdm(total=total, desc="eval", disable=not cfg.progress) as bar,
            partial.open("w") as samples_file,
        ):

            def env_args(prompts: int, samples: int) -> EnvArgs:
                return EnvArgs(prompts, samples, cfg.seed, tokenizer.bos_token, tokenizer.eos_token, services)

            for name, bench in benchmarks.items():
                figures, records = evaluate_benchmark(
                    policy,
                    tokenizer,
                    bench.task,
                    bench.problems,
                    env_args,
                    samples=cfg.samples,
                    max_prompt_tokens=max_prompt_tokens,
                    questions_per_batch=cfg.questions_per_batch,
                    progress=bar,
                    pass_k=cfg.pass_k,
                    maj_k=cfg.maj_k,
                    # The math reward's equivalence pools votes where the built-in tasks score.
                    same=services.math_grader.equivalent if bench.task.name in BUILTIN else None,
                    **tool,
                )
                results[name] = figures
                for record in records:
                    samples_file.write(json.dumps({"benchmark": name, **record}) + "\n")
    except BaseException:  # a failed or interrupted run leaves no partial file behind
        partial.unlink(missing_ok=True)
        raise
    return results


def _summary(
    cfg: EvalConfig,
    benchmarks: dict[str, Benchmark],
    notes: list[str],
    results: dict[str, dict[str, float]],
    max_new_tokens: int,
    backend: str,
) -> dict[str, Any]:
    """``eval.json``: the figures and what they came from, as ``--rerun`` reads it back."""
    resolved = replace(cfg, max_new_tokens=max_new_tokens, backend=backend, rerun=None)
    summary = {
        "model": cfg.model,
        "model_weights_sha256": weights_sha256(cfg.model),
        "orz_rl_version": orz_rl_version(),
        "tasks": {name: b.task.name for name, b in benchmarks.items()},
        "samples": cfg.samples,
        "seed": cfg.seed,
        "max_new_tokens": max_new_tokens,
        "sampling": {
            "temperature": cfg.temperature,
            "top_p": cfg.top_p,
            "max_new_tokens": max_new_tokens,
            "samples": cfg.samples,
            "seed": cfg.seed,
            "backend": backend,
        },
        "windows": {"limit": cfg.limit, "since": cfg.since, "until": cfg.until},
        # Every question counts alike in each headline (micro), as each benchmark's paper reports it.
        "headline": "micro: the mean over all questions; breakdown rows are each over their own",
        "benchmarks": {
            name: benchmark_record(b.path, b.files, b.items, b.problems, b.task.name)
            for name, b in benchmarks.items()
        },
        "config": jsonable(asdict(resolved)),
        "results": results,
    }
    if cfg.suite:
        suite = SUITES[cfg.suite]
        summary["suite"] = {
            "name": suite.name,
            "notes": notes,
            "paper": suite.paper,
            "sources": suite.sources,
        }
    return summary


def _print_results(cfg: EvalConfig, results: dict[str, dict[str, float]]) -> None:
    """The figures' table (and ``--suite``'s beside the paper's), and where the files are."""
    print(markdown_table(results))
    if cfg.suite:
        print(
            f"\n{suite_table(SUITES[cfg.suite], results, cfg.samples)}\n(paper: {SUITES[cfg.suite].sources})"
        )
    print(f"figures: {cfg.out_dir / 'eval.json'}; every sample: {cfg.out_dir / 'samples.jsonl'}")
