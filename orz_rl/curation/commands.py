"""``orz-rl data STEP``: each step's configuration and the function that runs it, by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tyro

from orz_rl.config import bound_problems, raise_if_any

#: step -> (one line of help, module, configuration class, function).
STEPS: dict[str, tuple[str, str, str, str]] = {
    "import": (
        "JSON, JSON Lines, Parquet or Hub rows -> ORZ's training format",
        "importing",
        "ImportConfig",
        "run",
    ),
    "dedup": ("drop exact and near-duplicate (MinHash LSH) questions", "dedup", "DedupConfig", "run"),
    "decontaminate": (
        "drop items sharing a 13-token span with a benchmark question",
        "decontaminate",
        "DecontaminateConfig",
        "run",
    ),
    "verifiable": (
        "keep items whose answer the math reward can grade",
        "verifiable",
        "VerifiableConfig",
        "run",
    ),
    "difficulty": (
        "each item's pass rate under a model (orz-rl eval's sampling)",
        "difficulty",
        "DifficultyConfig",
        "run",
    ),
    "select": (
        "keep a band of pass rates; drop solved or unsolved items",
        "difficulty",
        "SelectConfig",
        "select",
    ),
    "stats": (
        "counts per source, step and answer type; length histogram (Markdown, PNG)",
        "stats",
        "StatsConfig",
        "run",
    ),
}


def usage() -> str:
    width = max(map(len, STEPS))
    lines = [f"  {name:<{width}}  {text}" for name, (text, *_) in STEPS.items()]
    head = (
        "usage: orz-rl data STEP [ARGS ...]\n\n"
        "Build a training set step by step; each writes ORZ's training format and a JSON report\n"
        "(orz-rl data STEP --help lists a step's fields; docs/data.md chains them).\n\nsteps:"
    )
    return "\n".join([head, *lines])


def main(args: list[str]) -> Any:
    """Run the step ``args[0]`` with the rest of ``args`` as its fields."""
    import importlib

    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return None
    if args[0] not in STEPS:
        raise ValueError(f"unknown step {args[0]!r} of orz-rl data; steps: {', '.join(STEPS)}")
    _, module_name, config_name, function_name = STEPS[args[0]]
    module = importlib.import_module(f"orz_rl.curation.{module_name}")
    config = tyro.cli(getattr(module, config_name), args=args[1:], prog=f"orz-rl data {args[0]}")
    raise_if_any(bound_problems(config))  # every field in its range before any file is read
    function: Callable[[Any], Any] = getattr(module, function_name)
    return function(config)
