"""``orz-rl``: the command line.

* ``orz-rl train RECIPE [--field value ...]``: train a recipe (``--help`` lists every field;
  ``--dry-run`` prints its layout, memory per GPU and batch sizes instead).
* ``orz-rl eval --model PATH --benchmarks math500 aime2024 ... [--samples 16]``: avg@k and pass@k.
* ``orz-rl plot RUN_DIR [RUN_DIR ...] [--out DIR]``: training curves (PNG), per-token advantages (HTML).
* ``orz-rl build-model [--out DIR ...]``: build the embedded tiny model.
"""

from __future__ import annotations

import sys

import tyro

from orz_rl.sandbox import SandboxUnavailable

USAGE = "usage: orz-rl {train,eval,plot,build-model} ...  (orz-rl train --help lists the recipes)"


def train(args: list[str]) -> None:
    from orz_rl.recipes import RECIPES

    cfg = tyro.extras.overridable_config_cli(RECIPES, args=args)
    if cfg.dry_run:
        # Only the configuration is read: no model, engine, data file or run directory is made.
        from orz_rl.layout import format_plan, plan

        print(format_plan(plan(cfg)))
        return
    from orz_rl.trainer import Trainer

    Trainer(cfg).train()
    print(f"metrics: {cfg.run_dir / 'metrics.jsonl'}")


def evaluate(args: list[str]) -> None:
    from orz_rl.evaluation import EvalConfig, run

    run(tyro.cli(EvalConfig, args=args))


def plot(args: list[str]) -> None:
    from orz_rl.plot import PlotConfig, run

    run(tyro.cli(PlotConfig, args=args))


def build_model(args: list[str]) -> None:
    from orz_rl.tiny_model import TinyModelConfig, build

    print(f"tiny model saved to {build(tyro.cli(TinyModelConfig, args=args))}")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    commands = {"train": train, "eval": evaluate, "plot": plot, "build-model": build_model}
    if not argv or argv[0] not in commands:
        print(USAGE, file=sys.stderr)
        raise SystemExit(2)
    try:
        commands[argv[0]](argv[1:])
    except (FileNotFoundError, ValueError, SandboxUnavailable) as e:
        # Bad input (a path, a dataset line, a field value) is one clear line, not a traceback.
        print(f"orz-rl: error: {e}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
