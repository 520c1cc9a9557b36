"""``orz-rl data difficulty`` and ``select``: how often a model solves each item, and a band of it.

``difficulty`` samples ``n`` responses per item with the given model through ``orz-rl eval``'s own
machinery (:func:`orz_rl.tools.evaluation.run`: the task's prompt and reward rule, vLLM where it
imports) and writes each item's ``pass_rate`` (the share of its samples the reward takes) and
``samples``; ``orz-rl eval``'s ``samples.jsonl`` for the same run is kept beside the output.
``select`` keeps the items whose pass rate lies in a band: ORZ mined its 13k "hard" set out of
its 72k collection for the 32B run's last phase this way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from orz_rl.config import AT_LEAST_0, AT_LEAST_1, Backend
from orz_rl.curation.items import ItemWriter, Report, default_report, read_items
from orz_rl.problems.formats import DatasetFormatError
from orz_rl.runtime.atomic_write import refuse_overwrite


@dataclass(frozen=True)
class DifficultyConfig:
    """``orz-rl data difficulty``: each item's pass rate under a model."""

    input: tyro.conf.Positional[Path]
    """The training file to grade (``.jsonl`` or ``.json``)."""
    out: Path
    """The training file to write, each item with ``pass_rate`` and ``samples``."""
    model: str = "artifacts/tiny-qwen2"
    """Hugging Face model directory that samples (the model to be trained, or a checkpoint)."""
    samples: Annotated[int, AT_LEAST_1] = 8
    """Responses sampled per item."""
    seed: int = 0
    """Seed of the sampling (as ``orz-rl eval --seed``)."""
    max_new_tokens: Annotated[int, AT_LEAST_0] = 0
    """Response length limit (0: ``orz-rl eval``'s default)."""
    backend: Backend = "auto"
    """Generation backend, as ``orz-rl eval``'s."""
    questions_per_batch: Annotated[int, AT_LEAST_1] = 64
    """Items generated together (each with all its samples)."""
    progress: bool = True
    """Show a progress bar."""
    eval_dir: Path | None = None
    """Where ``orz-rl eval``'s files of the run go (default: ``OUT.difficulty/`` beside ``out``)."""
    report: Path | None = None
    """Where the JSON report goes (default: beside ``out``, ``NAME.report.json``)."""


def pass_rates(samples_file: Path, count: int, samples: int) -> tuple[list[float], set[int]]:
    """Each item's share of correct samples in ``orz-rl eval``'s ``samples.jsonl``, and the items
    whose prompt did not fit the model (``too_long``)."""
    correct, too_long = [0] * count, set()
    with samples_file.open() as lines:
        for line in lines:
            record = json.loads(line)
            correct[record["item"]] += bool(record["correct"])
            if record["finish_reason"] == "too_long":
                too_long.add(record["item"])
    return [c / samples for c in correct], too_long


def run(cfg: DifficultyConfig) -> Report:
    """``orz-rl data difficulty``: write ``cfg.out`` and its report."""
    from orz_rl.tools.eval_config import EvalConfig
    from orz_rl.tools.evaluation import run as evaluate

    if cfg.samples < 1:
        raise ValueError(f"--samples {cfg.samples}: at least 1")
    refuse_overwrite([cfg.input], out=cfg.out, report=cfg.report or default_report(cfg.out))
    items = list(read_items(cfg.input))
    eval_dir = cfg.eval_dir or cfg.out.with_name(cfg.out.name + ".difficulty")
    evaluate(
        EvalConfig(
            model=cfg.model,
            benchmarks=(str(cfg.input),),
            samples=cfg.samples,
            seed=cfg.seed,
            max_new_tokens=cfg.max_new_tokens,
            backend=cfg.backend,
            questions_per_batch=cfg.questions_per_batch,
            progress=cfg.progress,
            out_dir=eval_dir,
        )
    )
    rates, too_long = pass_rates(eval_dir / "samples.jsonl", len(items), cfg.samples)
    report = Report("difficulty", [str(cfg.input)], str(cfg.out), read=len(items))
    with ItemWriter(cfg.out) as writer:
        for item, rate in zip(items, rates, strict=True):
            item.meta |= {"pass_rate": rate, "samples": cfg.samples}
            writer.write(item)
            report.kept += 1
    bands = {"unsolved": sum(r == 0 for r in rates), "solved": sum(r == 1 for r in rates)}
    report.sections |= {
        "model": cfg.model,
        "samples": cfg.samples,
        "seed": cfg.seed,
        "mean_pass_rate": sum(rates) / max(len(rates), 1),
        "too_long": len(too_long),
        **bands,
        "eval_dir": str(eval_dir),
    }
    report.finish(cfg.report, f"; {bands['unsolved']} never solved, {bands['solved']} always solved")
    return report


@dataclass(frozen=True)
class SelectConfig:
    """``orz-rl data select``: keep the items whose pass rate lies in a band."""

    input: tyro.conf.Positional[Path]
    """A training file ``orz-rl data difficulty`` wrote."""
    out: Path
    """The training file to write."""
    pass_rate: str = ""
    """Keep pass rates in ``LOW,HIGH`` (both included; ``0.0,0.75``); empty: any."""
    drop_solved: bool = False
    """Drop items every sample solved (pass rate 1)."""
    drop_unsolved: bool = False
    """Drop items no sample solved (pass rate 0)."""
    report: Path | None = None
    """Where the JSON report goes (default: beside ``out``, ``NAME.report.json``)."""


def band(text: str) -> tuple[float, float]:
    """``"0.0,0.75"`` -> ``(0.0, 0.75)``; anything else is a ``ValueError`` naming it."""
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--pass-rate {text!r}: write LOW,HIGH, e.g. 0.0,0.75") from None
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"--pass-rate {text!r}: need 0 <= LOW <= HIGH <= 1")
    return low, high


def select(cfg: SelectConfig) -> Report:
    """``orz-rl data select``: write ``cfg.out`` and its report."""
    low, high = band(cfg.pass_rate) if cfg.pass_rate else (0.0, 1.0)
    refuse_overwrite([cfg.input], out=cfg.out, report=cfg.report or default_report(cfg.out))
    report = Report("select", [str(cfg.input)], str(cfg.out))
    with ItemWriter(cfg.out) as writer:
        for item in read_items(cfg.input):
            report.read += 1
            rate = item.meta.get("pass_rate")
            if not isinstance(rate, int | float) or isinstance(rate, bool):
                raise DatasetFormatError(
                    f"{item.source}: no pass_rate; run orz-rl data difficulty on {cfg.input} first"
                )
            if cfg.drop_solved and rate == 1:
                report.drop(item, "solved", pass_rate=rate)
            elif cfg.drop_unsolved and rate == 0:
                report.drop(item, "unsolved", pass_rate=rate)
            elif not low <= rate <= high:
                report.drop(item, "outside_band", pass_rate=rate)
            else:
                writer.write(item)
                report.kept += 1
    report.sections["band"] = [low, high]
    report.finish(cfg.report)
    return report
