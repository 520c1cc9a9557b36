"""``orz-rl compare``: each run's row and each group's medians, hand-computed from known metrics."""

from __future__ import annotations

import json

import pytest

from orz_rl.cli import main
from orz_rl.tools.compare import CompareConfig, compare, first_reaching, group_of


def _run(tmp_path, name: str, rewards: list[float], seconds: float, rss: float | None = None):
    run = tmp_path / name
    run.mkdir()
    rows = []
    for i, r in enumerate(rewards, 1):
        row = {"step": i, "reward/mean": r, "response_length/mean": 20.0, "time/step": seconds}
        rows.append(row | ({"system/peak_rss_gib": rss + i / 100} if rss is not None else {}))
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def test_first_reaching_reads_the_moving_mean_not_one_lucky_step():
    rewards = [0.0, 1.0, 0.0, 0.6, 0.6, 0.6]
    assert first_reaching(rewards, 0.6, window=1) == 2
    assert first_reaching(rewards, 0.6, window=3) == 6  # (0.6 + 0.6 + 0.6) / 3; step 4's mean is 0.53
    assert first_reaching(rewards, 0.9, window=3) is None


def test_each_run_and_each_seed_group_gets_its_hand_computed_row(tmp_path, capsys):
    fast = _run(tmp_path, "grpo-0", [0.2, 0.4, 0.6, 0.8, 0.8], seconds=0.5, rss=1.0)
    slow = _run(tmp_path, "grpo-1", [0.2, 0.3, 0.4, 0.5, 0.6], seconds=0.7, rss=2.0)
    never = _run(tmp_path, "grpo-2", [0.1] * 5, seconds=0.6, rss=1.5)
    gae = _run(tmp_path, "gae-0", [0.5, 0.7, 0.7, 0.7, 0.7], seconds=1.0)
    cfg = CompareConfig(runs=(fast, slow, never, gae), targets=(0.5, 0.6), window=2, out=tmp_path / "c.png")
    table, figure = compare(cfg)
    rows = {line.split("  ")[0].strip(): line.split()[-7:] for line in table.splitlines()[1:]}
    # grpo-0: 2-step means 0.3, 0.5, 0.7, 0.8 -> 0.5 at step 3 (1.5 s), 0.6 at step 4 (2.0 s).
    assert rows["grpo-0"] == ["3", "4", "2", "2", "0.50", "0.800", "1.05"]
    # grpo-1: means 0.25, 0.35, 0.45, 0.55 -> 0.5 at step 5, 0.6 never.
    assert rows["grpo-1"] == ["5", "-", "4", "-", "0.70", "0.550", "2.05"]
    assert rows["grpo-2"] == ["-", "-", "-", "-", "0.60", "0.100", "1.55"]
    assert rows["gae-0"] == ["2", "2", "2", "2", "1.00", "0.700", "-"]
    # The median of (3, 5, never) is 5; of (4, never, never) never: a miss counts as slowest.
    assert rows["grpo (median of 3)"] == ["5", "-", "4", "-", "0.60", "0.550", "1.55"]
    assert "gae (median" not in table, "one seed is no group"
    assert figure.stat().st_size > 10_000
    main(["compare", str(fast), str(slow), "--targets", "0.5", "--out", str(tmp_path / "d.png")])
    assert "grpo (median of 2)" in capsys.readouterr().out


def test_a_directory_without_metrics_is_one_error_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a run directory"):
        compare(CompareConfig(runs=(tmp_path,), out=tmp_path / "c.png"))
    assert group_of(tmp_path / "rloo-12") == "rloo" and group_of(tmp_path / "run") == "run"
