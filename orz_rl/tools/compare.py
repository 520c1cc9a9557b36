"""``orz-rl compare RUN_DIR ...``: several runs on one figure and in one table, from their directories.

For each run (its ``metrics.jsonl``): the first step at which the mean reward of the last
``window`` steps reaches each ``--targets`` value and the training seconds to it (the sum of
``time/step`` up to that step), the median seconds a step, the highest ``window``-step mean, and
the process's peak resident memory (``system/peak_rss_gib``). Runs named ``NAME-SEED`` (as
``bench/baselines.py`` writes them) form a group: its row holds the medians over the seeds, a run
that never reaches a target counting as slower than any that does, and its curves share a colour.

``compare.png`` has three panels against the step: the ``window``-step means of the reward and of
the mean response length, and the seconds of each step.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import tyro
from matplotlib.figure import Figure

from orz_rl.runtime import atomic_write
from orz_rl.tools.plot import read_metrics


@dataclass(frozen=True)
class CompareConfig:
    """What to compare (``orz-rl compare RUN_DIR [RUN_DIR ...]``)."""

    runs: tyro.conf.Positional[tuple[Path, ...]]
    """Run directories, each with its ``metrics.jsonl``; ``NAME-SEED`` ones are grouped by NAME."""
    targets: tuple[float, ...] = (0.5, 0.6)
    """Rewards whose first crossing (by the ``window``-step mean) the table times."""
    window: int = 10
    """Steps of the moving mean the targets and the peak are read from."""
    out: Path = Path("compare.png")
    """Where the figure is written."""


def first_reaching(rewards: list[float], target: float, window: int = 10) -> int | None:
    """The first step (1-based) whose last ``window`` steps' mean reward is at least ``target``."""
    for step in range(window, len(rewards) + 1):
        if statistics.fmean(rewards[step - window : step]) >= target:
            return step
    return None


def moving_mean(values: list[float], window: int) -> list[float]:
    """The mean of each step's last ``window`` values (fewer at the start)."""
    return [statistics.fmean(values[max(0, i + 1 - window) : i + 1]) for i in range(len(values))]


def group_of(run: Path) -> str:
    """``grpo-2`` -> ``grpo``: the run's name without a trailing seed."""
    return re.sub(r"-\d+$", "", Path(run).name)


@dataclass(frozen=True)
class RunFigures:
    """One run's (or one group's median) row of the table."""

    steps: int
    reached: tuple[int | None, ...]
    """Per target: the first step reaching it, or None."""
    seconds: tuple[float | None, ...]
    """Per target: the training seconds to that step, or None."""
    s_per_step: float
    peak: float
    peak_rss_gib: float | None


def run_figures(rows: list[dict], targets: tuple[float, ...], window: int) -> RunFigures:
    """The figures of one run's ``metrics.jsonl`` rows."""
    rows = [r for r in rows if "reward/mean" in r]
    rewards = [r["reward/mean"] for r in rows]
    seconds = [r.get("time/step", math.nan) for r in rows]
    reached = tuple(first_reaching(rewards, t, window) for t in targets)
    means = [statistics.fmean(rewards[i - window : i]) for i in range(window, len(rewards) + 1)]
    rss = [r["system/peak_rss_gib"] for r in rows if "system/peak_rss_gib" in r]
    return RunFigures(
        steps=len(rows),
        reached=reached,
        seconds=tuple(sum(seconds[:step]) if step else None for step in reached),
        s_per_step=statistics.median(seconds) if seconds else math.nan,
        peak=max(means, default=math.nan),
        peak_rss_gib=max(rss) if rss else None,
    )


def _median(values: list[float | None]) -> float | None:
    """The median, a None (never reached) counting as larger than any number."""
    ordered = sorted(values, key=lambda v: (v is None, v or 0.0))
    middle = ordered[(len(ordered) - 1) // 2 : len(ordered) // 2 + 1]
    if any(v is None for v in middle):
        return None
    return statistics.fmean(middle)


def median_figures(runs: list[RunFigures]) -> RunFigures:
    """A group's row: each column's median over its runs."""
    rss = [r.peak_rss_gib for r in runs if r.peak_rss_gib is not None]
    n = len(runs[0].reached)
    return RunFigures(
        steps=min(r.steps for r in runs),
        reached=tuple(_median([r.reached[i] for r in runs]) for i in range(n)),
        seconds=tuple(_median([r.seconds[i] for r in runs]) for i in range(n)),
        s_per_step=statistics.median(r.s_per_step for r in runs),
        peak=statistics.median(r.peak for r in runs),
        peak_rss_gib=statistics.median(rss) if rss else None,
    )


def format_table(figures: dict[str, RunFigures], targets: tuple[float, ...], window: int) -> str:
    """The table as aligned text, one row per run or group."""
    heads = [f"step>={t:g}" for t in targets] + [f"s>={t:g}" for t in targets]
    heads += ["s/step", f"peak{window}", "RSS GiB"]
    width = max([len(n) for n in figures] + [4])
    lines = [f"{'run':<{width}}  " + "  ".join(f"{h:>9}" for h in heads)]
    for name, f in figures.items():
        cells = [f"{s:.0f}" if s is not None else "-" for s in f.reached]
        cells += [f"{s:.0f}" if s is not None else "-" for s in f.seconds]
        cells += [f"{f.s_per_step:.2f}", f"{f.peak:.3f}", f"{f.peak_rss_gib:.2f}" if f.peak_rss_gib else "-"]
        lines.append(f"{name:<{width}}  " + "  ".join(f"{c:>9}" for c in cells))
    return "\n".join(lines)


def plot_comparison(runs: dict[Path, list[dict]], window: int) -> Figure:
    """Reward (moving mean), response length and step seconds against the step, a colour per group."""
    fig = Figure(figsize=(14, 4.2), layout="constrained")
    axes = fig.subplots(1, 3)
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    groups = list(dict.fromkeys(group_of(r) for r in runs))
    panels = (
        (f"Train reward ({window}-step mean)", "reward/mean", window),
        (f"Response length ({window}-step mean)", "response_length/mean", window),
        ("Seconds a step", "time/step", 1),
    )
    for run, rows in runs.items():
        color = colors[groups.index(group_of(run)) % len(colors)]
        for ax, (_, key, w) in zip(axes, panels, strict=True):
            points = [(r["step"], r[key]) for r in rows if key in r]
            if points:
                steps, values = zip(*points, strict=True)
                first = not any(line.get_label() == group_of(run) for line in ax.lines)
                ax.plot(steps, moving_mean(list(values), w), color=color, lw=1.2, alpha=0.8,
                        label=group_of(run) if first else "_")  # fmt: skip
    for ax, (title, _, _) in zip(axes, panels, strict=True):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    return fig


def compare(cfg: CompareConfig) -> tuple[str, Path]:
    """Write the figure and return the table and the figure's path."""
    if cfg.window < 1:
        raise ValueError(f"--window {cfg.window}: must be at least 1")
    atomic_write.refuse_overwrite([Path(r) / "metrics.jsonl" for r in cfg.runs], out=cfg.out)
    runs = {Path(r): read_metrics(r) for r in cfg.runs}
    figures = {Path(r).name: run_figures(rows, cfg.targets, cfg.window) for r, rows in runs.items()}
    grouped: dict[str, list[RunFigures]] = {}
    for run, f in zip(runs, figures.values(), strict=True):
        grouped.setdefault(group_of(run), []).append(f)
    medians = {f"{g} (median of {len(fs)})": median_figures(fs) for g, fs in grouped.items() if len(fs) > 1}
    table = format_table(figures | medians, cfg.targets, cfg.window)
    with atomic_write.replacing(cfg.out) as partial:
        plot_comparison(runs, cfg.window).savefig(
            partial, dpi=110, format=cfg.out.suffix.removeprefix(".") or "png"
        )
    return table, cfg.out


def run(cfg: CompareConfig) -> None:
    table, path = compare(cfg)
    print(table)
    print(f"figure: {path}")
