"""``orz-rl plot`` on a real short run: valid images, and the curves the runs logged, read back."""

from __future__ import annotations

import json
import shutil

from PIL import Image

from orz_rl.tools.plot import PANELS, advantages_html, plot_curves, read_metrics

from ..conftest import SHORT_RUN_STEPS, orz_cli_here


def test_plot_writes_a_png_of_every_panel_and_an_advantage_page(short_run, tmp_path):
    out = orz_cli_here("plot", str(short_run), "--out", str(tmp_path / "plots"))
    assert out.returncode == 0, out.stderr[-2000:]
    with Image.open(tmp_path / "plots" / "curves.png") as image:
        image.verify()  # a complete, valid PNG
    with Image.open(tmp_path / "plots" / "curves.png") as image:
        assert image.format == "PNG" and image.size == (1320, 840)
    assert (tmp_path / "plots" / "advantages.html").read_text().startswith("<!doctype html>")


def test_overlaid_runs_draw_one_curve_per_run_and_per_benchmark(short_run, tmp_path):
    other = tmp_path / "other-run"
    shutil.copytree(short_run, other, ignore=shutil.ignore_patterns("checkpoints", "tensorboard"))
    fig = plot_curves([short_run, other])
    axes = dict(zip([title for title, _, _ in PANELS], fig.axes, strict=True))
    lines = {title: len(ax.lines) for title, ax in axes.items()}
    # Two runs; evaluation: two runs x two benchmarks (math500, aime2024).
    assert lines == {"Train reward": 2, "Response length": 2, "Evaluation": 4, "Critic value loss": 2}
    rows = read_metrics(short_run)
    reward = axes["Train reward"].lines[0]
    assert list(reward.get_xdata()) == list(range(1, SHORT_RUN_STEPS + 1))
    assert list(reward.get_ydata()) == [r["reward/mean"] for r in rows]
    evals = axes["Evaluation"].lines[0]
    assert list(evals.get_xdata()) == [2, 4, 6]  # logged every 2 steps
    labels = sorted(line.get_label() for line in axes["Evaluation"].lines)
    assert labels == ["other-run aime2024", "other-run math500", "run aime2024", "run math500"]


def test_the_advantage_page_shades_every_token_of_the_logged_responses(short_run):
    rows = [json.loads(line) for line in (short_run / "rollouts.jsonl").read_text().splitlines()]
    last = [r for r in rows if r["step"] == SHORT_RUN_STEPS]
    assert last and all(len(r["tokens"]) == len(r["advantages"]) == len(r["values"]) for r in last)
    page = advantages_html(short_run)
    assert page.count("<span style='background:rgba(") == sum(len(r["tokens"]) for r in last)
    assert page.count("<h2>reward ") == len(last)


def test_garbled_metrics_lines_are_left_out_and_counted_and_a_torn_last_line_is_not(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    rows = [
        '{"step": 1, "reward/mean": 0.5}',
        "GARBAGE",
        "[1, 2]",
        '{"step": 2, "reward/mean": 0.6}',
        '{"ste',
    ]
    (run / "metrics.jsonl").write_text("\n".join(rows))
    assert [r["step"] for r in read_metrics(run)] == [1, 2]
    assert f"{run / 'metrics.jsonl'}: 2 unreadable line(s) left out" in capsys.readouterr().err
