"""``orz-rl plot``: a run's curves, several runs overlaid, and what the critic credits in one response.

* ``curves.png``: train reward, response length, evaluation accuracy (every
  ``eval/<benchmark>/avg@k``) and the critic's value loss against steps, one
  colour per run, as the ORZ paper draws its training curves;
* ``advantages.html``: one logged response (``rollouts.jsonl``) token by token,
  each token shaded by its advantage (green above 0, red below), its value and
  advantage in the tooltip.
"""

from __future__ import annotations

import html
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import tyro
from matplotlib.figure import Figure

from orz_rl.runtime import atomic_write
from orz_rl.runtime.run_log import read_metrics_lines

#: The panels of ``curves.png``: (title, y label, metric or the eval prefix).
PANELS = (
    ("Train reward", "reward/mean", "reward/mean"),
    ("Response length", "tokens", "response_length/mean"),
    ("Evaluation", "avg@k", "eval/"),
    ("Critic value loss", "loss (log scale)", "critic/loss_critic"),
)


@dataclass(frozen=True)
class PlotConfig:
    """What to plot (``orz-rl plot RUN_DIR [RUN_DIR ...]``)."""

    runs: tyro.conf.Positional[tuple[Path, ...]]
    """Run directories (each with its ``metrics.jsonl``), overlaid in one figure."""
    out: Path = Path("plots")
    """Directory the PNG and the HTML are written to."""
    step: int = -1
    """The step whose logged response ``advantages.html`` shows (-1: the last logged)."""


def read_metrics(run_dir: Path) -> list[dict[str, float]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{str(run_dir)!r} is not a run directory: it has no metrics.jsonl")
    rows, unreadable = read_metrics_lines(path)
    if unreadable:
        print(f"orz-rl: {path}: {unreadable} unreadable line(s) left out", file=sys.stderr)
    return rows


def plot_curves(run_dirs: list[Path]) -> Figure:
    """The 2 x 2 figure of :data:`PANELS`, one line per run (per run and benchmark for evaluation)."""
    # A bare Figure, not pyplot: files only, no display and no global backend to choose.
    fig = Figure(figsize=(11, 7), layout="constrained")
    axes = fig.subplots(2, 2)
    names = [Path(r).name for r in run_dirs]
    if len(set(names)) < len(names):  # runs/a/run and runs/b/run: the whole path tells them apart
        names = [str(r) for r in run_dirs]
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (run_dir, name) in enumerate(zip(run_dirs, names, strict=True)):
        rows = read_metrics(run_dir)
        color = colors[i % len(colors)]
        for ax, (_, _, key) in zip(axes.flat, PANELS, strict=True):
            if key != "eval/":
                points = [(r["step"], r[key]) for r in rows if key in r]
                if points:
                    ax.plot(*zip(*points, strict=True), color=color, label=name)
                continue
            evals = sorted({k for r in rows for k in r if k.startswith("eval/") and "/avg@" in k})
            for style, k in zip(("-", "--", ":", "-."), evals, strict=False):
                points = [(r["step"], r[k]) for r in rows if k in r]
                bench = k.split("/")[1]
                ax.plot(*zip(*points, strict=True), style, marker="o", color=color, label=f"{name} {bench}")
    for ax, (title, ylabel, _) in zip(axes.flat, PANELS, strict=True):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
            if title == "Critic value loss":
                ax.set_yscale("log")  # ORZ's value-head init starts it near 100; then it falls below 1
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="grey")
    return fig


def _shade(advantage: float, scale: float) -> str:
    alpha = min(abs(advantage) / scale, 1.0) * 0.8 if scale > 0 else 0.0
    rgb = "0, 160, 60" if advantage >= 0 else "220, 30, 30"
    return f"rgba({rgb}, {alpha:.3f})"


def advantages_html(run_dir: Path, step: int = -1) -> str:
    """An HTML page of the responses logged at ``step`` (-1: the last step logged), each token
    shaded by its advantage."""
    path = Path(run_dir) / "rollouts.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{str(run_dir)!r} has no rollouts.jsonl (logged by orz-rl train)")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    step = rows[-1]["step"] if step < 0 else step
    chosen = [r for r in rows if r["step"] == step]
    if not chosen:
        raise ValueError(
            f"no response of step {step} in {path} (logged steps: {rows[0]['step']}-{rows[-1]['step']})"
        )
    parts = [
        "<!doctype html><meta charset='utf-8'><title>orz-rl advantages</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        ".r{font-family:monospace;white-space:pre-wrap;line-height:1.8}"
        ".p{color:#777;white-space:pre-wrap;font-size:85%}</style>",
        f"<h1>{html.escape(str(run_dir))}: step {step}</h1>",
        "<p>Each response token is shaded by its advantage: green above 0, red below; hover for "
        "the advantage and the critic's value (where the run has a critic).</p>",
    ]
    for row in chosen:
        scale = max((abs(a) for a in row["advantages"]), default=0.0)
        values = row["values"] or [None] * len(row["tokens"])  # None: a run without a critic
        spans = "".join(
            f"<span style='background:{_shade(a, scale)}' title='advantage {a:+.3f}"
            + (f", value {v:.3f}'>" if v is not None else "'>")
            + f"{html.escape(t)}</span>"
            for t, a, v in zip(row["tokens"], row["advantages"], values, strict=True)
        )
        parts.append(
            f"<h2>reward {row['reward']:g}</h2><div class='p'>{html.escape(row['prompt'][-300:])}</div>"
        )
        parts.append(f"<div class='r'>{spans}</div>")
    return "\n".join(parts)


def run(cfg: PlotConfig) -> list[Path]:
    """Write ``curves.png`` (every run) and ``advantages.html`` (the first run) under ``cfg.out``."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    fig = plot_curves(list(cfg.runs))
    curves = cfg.out / "curves.png"
    with atomic_write.replacing(curves) as partial:
        fig.savefig(partial, dpi=120, format="png")
    written = [curves]
    if (Path(cfg.runs[0]) / "rollouts.jsonl").is_file():
        page = cfg.out / "advantages.html"
        atomic_write.write_text(page, advantages_html(cfg.runs[0], cfg.step))
        written.append(page)
    for path in written:
        print(f"wrote {path}")
    return written
