"""``orz-rl``: the command line. ``orz-rl --help`` lists the sub-commands."""

from __future__ import annotations

import sys
from collections.abc import Callable

import tyro

from orz_rl.config import TrainConfig

COMMANDS = {
    "train": "train a recipe: orz-rl train RECIPE [--field value ...] (--help lists every field)",
    "recipes": "list the built-in recipes",
    "tasks": "list the tasks --task takes",
    "eval": "sample, grade and report avg@n, pass@k and maj@k on benchmarks",
    "plot": "training curves (PNG) and per-token advantages (HTML) of runs",
    "compare": "several runs in one figure and one table: steps and seconds to a reward, s/step, memory",
    "status": "where a run stands: last step, recent means, checkpoints, time to the end",
    "data": "build a training set: import, dedup, decontaminate, verifiable, difficulty, select, stats",
    "build-model": "build the embedded tiny model",
}

RECIPE_HELP = """\
usage: orz-rl train RECIPE [--field value ...] [--dry-run] [--help]

RECIPE is a built-in recipe (orz-rl recipes lists them), package.module:NAME, or
path/to/file.py:NAME of a TrainConfig of one's own. Every field can be overridden;
orz-rl train RECIPE --help lists them with their values.

--task names what a run trains on: a built-in task (math, code, mixed), one an installed
package registers, FILE.py:NAME or package.module:NAME (orz-rl tasks says more).
"""

# What `orz-rl tasks` prints after the names it sees: the ways to name a task that no listing
# can show, since a Task in a file or module of one's own is found only when named.
TASK_FORMS = """\
a task of one's own (a Task; README.md, "How to: a task of your own"), named by where it is:
  --task FILE.py:NAME         in a file, e.g. orz-rl train cpu-default --task my_task.py:TASK
  --task package.module:NAME  in an importable module, e.g. --task my_package.tasks:TASK"""

# Added to the error of a data file in no built-in format, under the commands that take --task:
# such a file is most often a task's own, read only by that task's loader.
TASK_HINT = (
    "If the file is a task's own, name that task: --task FILE.py:NAME (its Task in a file), "
    "--task package.module:NAME, or the name it is registered under (orz-rl tasks lists them)"
)


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {text}" for name, text in COMMANDS.items()]
    head = "usage: orz-rl COMMAND [ARGS ...]\n\nOpen-Reasoner-Zero on TorchRL.\n\ncommands:"
    return "\n".join([head, *lines])


def load_recipe(spec: str) -> TrainConfig:
    """A built-in recipe by name, or a :class:`TrainConfig` named ``package.module:NAME`` or
    ``path/to/file.py:NAME``."""
    from orz_rl.plugins import is_spec, load_object
    from orz_rl.recipes import RECIPES

    if spec in RECIPES:
        return RECIPES[spec][1]
    if not is_spec(spec):
        raise ValueError(
            f"unknown recipe {spec!r}; built-in: {', '.join(RECIPES)} "
            "(or package.module:NAME, or path/to/file.py:NAME)"
        )
    cfg = load_object(spec, "recipe")
    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"recipe {spec!r} is a {type(cfg).__name__}, not an orz_rl TrainConfig")
    return cfg


def train(args: list[str]) -> None:
    if not args or args[0] in ("-h", "--help"):
        print(RECIPE_HELP)
        recipes([])
        return
    spec, rest = args[0], args[1:]
    cfg = tyro.cli(TrainConfig, default=load_recipe(spec), args=rest, prog=f"orz-rl train {spec}")
    if cfg.dry_run:
        # Only the configuration is read: no model, engine, data file or run directory is made.
        from orz_rl.runtime.preflight import raise_if_any, settings_problems
        from orz_rl.tools.plan import format_plan, plan

        raise_if_any(settings_problems(cfg))  # a field out of range is refused here as by a run
        print(format_plan(plan(cfg)))
        return
    from orz_rl.runtime.preflight import config_problems, load_checked

    if config_problems(cfg)[1]:
        # Refused with every problem (the data's and the lengths' too) before the trainer's
        # imports (vLLM: ~5 s); a configuration without one is checked as the trainer loads it.
        load_checked(cfg)
    from orz_rl.runtime.quiet import quiet_known_noise

    quiet_known_noise()  # before vLLM is imported
    from orz_rl.trainer import Trainer

    Trainer(cfg).train()
    print(f"metrics: {cfg.run_dir / 'metrics.jsonl'}")


def recipes(args: list[str]) -> None:
    from orz_rl.recipes import RECIPES

    width = max(map(len, RECIPES))
    print("built-in recipes (orz-rl train NAME):")
    for name, (text, _) in RECIPES.items():
        print(f"  {name:<{width}}  {text}")


def tasks(args: list[str]) -> None:
    from orz_rl.envs.registry import BUILTIN, ENTRY_POINT_GROUP, get_task, registered_tasks

    found = registered_tasks()
    installed = {name: target for name, target in found.items() if name not in BUILTIN}
    width = max(map(len, found))

    def show(name: str, origin: str = "") -> None:
        try:
            summary = get_task(name).summary
        except ValueError as e:  # one broken package's task should not hide the others
            summary = f"cannot be loaded: {e}"
        print(f"  {name:<{width}}  {summary}{origin}")

    print("built-in tasks (--task NAME):")
    for name in BUILTIN:
        show(name)
    print(f"tasks installed packages register (--task NAME; entry points in the group {ENTRY_POINT_GROUP}):")
    for name, target in installed.items():
        show(name, f" ({target})")
    if not installed:
        print("  none (a package adds one as examples/countdown/pyproject.toml does)")
    print()
    print(TASK_FORMS)


def evaluate(args: list[str]) -> None:
    from orz_rl.config import bound_problems, raise_if_any
    from orz_rl.runtime.quiet import quiet_known_noise
    from orz_rl.tools.eval_config import EvalConfig

    cfg = tyro.cli(EvalConfig, args=args, prog="orz-rl eval")
    # A field out of range is refused before the evaluation's imports (vLLM, TorchRL: ~10 s).
    raise_if_any(bound_problems(cfg))
    quiet_known_noise()  # before vLLM is imported
    from orz_rl.tools.evaluation import run

    run(cfg)


def plot(args: list[str]) -> None:
    from orz_rl.tools.plot import PlotConfig, run

    run(tyro.cli(PlotConfig, args=args, prog="orz-rl plot"))


def compare(args: list[str]) -> None:
    from orz_rl.tools.compare import CompareConfig, run

    run(tyro.cli(CompareConfig, args=args, prog="orz-rl compare"))


def status(args: list[str]) -> None:
    from orz_rl.tools.status import StatusConfig, run

    run(tyro.cli(StatusConfig, args=args, prog="orz-rl status"))


def data(args: list[str]) -> None:
    from orz_rl.curation.commands import main as run_step

    run_step(args)


def build_model(args: list[str]) -> None:
    from orz_rl.models.tiny import TinyModelConfig, build

    print(f"tiny model saved to {build(tyro.cli(TinyModelConfig, args=args, prog='orz-rl build-model'))}")


HANDLERS: dict[str, Callable[[list[str]], None]] = {
    "train": train,
    "recipes": recipes,
    "tasks": tasks,
    "eval": evaluate,
    "plot": plot,
    "compare": compare,
    "status": status,
    "data": data,
    "build-model": build_model,
}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(usage(), file=sys.stderr)
        raise SystemExit(2)
    if argv[0] in ("-h", "--help"):
        print(usage())
        return
    if argv[0] not in HANDLERS:
        print(f"orz-rl: unknown command {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        raise SystemExit(2)
    from orz_rl.rewards.sandbox import SandboxUnavailable

    try:
        HANDLERS[argv[0]](argv[1:])
    except (OSError, ValueError, SandboxUnavailable) as e:
        # Bad input (a path, a dataset line, a field value) and a fault of the machine's (a full
        # disk, a read-only folder: OSError names the file) are one clear line, not a traceback.
        print(f"orz-rl: error: {e}{task_hint(argv[0], e)}", file=sys.stderr)
        raise SystemExit(1) from None


def task_hint(command: str, error: Exception) -> str:
    """``TASK_HINT`` where ``error`` is a data file in no built-in format and ``command`` takes
    ``--task``; else nothing."""
    from orz_rl.problems.formats import UnknownFormatError

    return f". {TASK_HINT}" if command in ("train", "eval") and isinstance(error, UnknownFormatError) else ""


if __name__ == "__main__":
    main()
