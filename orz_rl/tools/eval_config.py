"""``orz-rl eval``'s settings, apart from the evaluation itself: the command line is parsed and
its bounds checked in a second, before the ~10 s of imports that sampling needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from orz_rl.config import AT_LEAST_0, AT_LEAST_1, POSITIVE, Bound, ToolConfig
from orz_rl.problems.benchmarks import DATA_DIR, KNOWN


@dataclass(frozen=True)
class EvalConfig:
    """``orz-rl eval``: sample, grade and report avg@k / pass@k."""

    model: str = "artifacts/tiny-qwen2"
    """Hugging Face model directory to evaluate (a training checkpoint's ``actor`` works)."""
    task: str = "auto"
    """The task whose prompt and reward rule score the answers: a registered name, ``FILE.py:NAME``
    or ``package.module:NAME`` (``orz-rl tasks`` lists them);
    ``auto``: each benchmark's own, ``code`` for programming problems, ``math`` for the rest
    (``mixed`` for a file of both), so that math and code share one run and one table."""
    benchmarks: tuple[str, ...] = KNOWN
    """Benchmark names (math500, aime2024, gpqa_diamond, humaneval), paths of data files or
    folders of them as published (Parquet, CSV, JSON, JSON Lines, gzipped; MATH-500, AIME, GPQA,
    MMLU, MMLU-Pro, GSM8K, LiveCodeBench, HumanEval, MBPP: docs/benchmarks.md), or ``NAME=PATH``
    to name one; two of one name are an error."""
    data_dir: Path = DATA_DIR
    """Where the named benchmarks' files are (default: the ones shipped with orz-rl); with
    ``--suite``, the folder of the benchmarks' downloads."""
    suite: Literal["", "orz"] = ""
    """A paper's table in one run: ``orz`` finds ORZ's seven benchmarks (AIME 2024 and 2025,
    MATH500, GPQA-Diamond, LiveCodeBench, MMLU, MMLU-Pro) among the downloads in ``--data-dir``
    (the shipped sets where it lacks them), runs them, and prints the paper's figures beside
    the run's; ``--benchmarks NAME=PATH`` names any it should not look for."""
    samples: Annotated[int, AT_LEAST_1] = 16
    """Responses sampled per question, ``n`` (ORZ reports avg@16)."""
    pass_k: Annotated[tuple[int, ...], AT_LEAST_1] = ()
    """The ``k`` of each pass@k to report, each at most ``samples`` (empty: ``samples`` alone)."""
    maj_k: Annotated[tuple[int, ...], AT_LEAST_1] = ()
    """The ``k`` of each maj@k to report where the task extracts answers (empty: ``samples``)."""
    max_new_tokens: Annotated[int, AT_LEAST_0] = 0
    """Response length limit; a response cut by it scores 0 (0: ORZ's 8,000, or half the
    model's positions where it has fewer than 16,000, as the CPU default's tiny model)."""
    temperature: Annotated[float, POSITIVE] = 1.0
    """Sampling temperature (ORZ: 1.0)."""
    top_p: Annotated[float, Bound(0, 1, low_open=True)] = 1.0
    """Nucleus threshold (ORZ: 1.0)."""
    backend: Literal["auto", "vllm", "transformers"] = "auto"
    """Generation backend: vllm (auto, wherever it imports) or transformers."""
    dtype: str = "float32"
    """Parameter dtype of the evaluated model."""
    questions_per_batch: Annotated[int, AT_LEAST_1] = 64
    """Questions generated together (each with all its samples)."""
    seed: int = 0
    """Seed of the sampling."""
    out_dir: Path = Path("runs/eval")
    """Where ``eval.json`` (the figures) and ``samples.jsonl`` (every sample) go."""
    progress: bool = True
    """Show a progress bar over questions x samples."""
    grader_timeout: Annotated[float, POSITIVE] = 5.0
    """Seconds one answer check may take (``inf``: no limit, which a hostile answer can hang)."""
    limit: Annotated[int, AT_LEAST_0] = 0
    """Evaluate only the first this many questions of each benchmark (0: all)."""
    since: str = ""
    """Only problems published on or after this date (ISO, ``2024-08-01``), as LiveCodeBench
    windows its releases against a model's training cut-off; problems without a date are kept."""
    until: str = ""
    """Only problems published on or before this date (ISO); problems without a date are kept."""
    tools: Literal["none", "python"] = "none"
    """``python``: the model may run Python in the sandbox between turns, as in a run trained
    with ``--rollout.tools python`` (``docs/tools.md``); ``none``: one turn."""
    tool: ToolConfig = field(default_factory=ToolConfig)
    """The Python tool's budgets (with ``--tools python``)."""
    rerun: Path | None = None
    """An earlier run's ``eval.json``: run the same evaluation again (its model, files, sampling,
    seed and backend; refused if a file or the weights changed since); only ``--out-dir`` and
    ``--progress`` may be given with it."""
