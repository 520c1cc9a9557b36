"""Step time and throughput: each ``perf/*`` figure is its tokens over its own phase's seconds."""

from __future__ import annotations

import json

import pytest

from orz_rl.runtime.timing import Timer, throughput_metrics

from ..conftest import cpu_default_on, orz_cli


def test_throughput_is_the_counted_tokens_over_the_phase_seconds():
    phases, passes = Timer(), Timer()
    phases.seconds |= {"generation": 2.0, "step": 8.0}
    passes.seconds |= {"forward": 1.0, "forward_backward": 3.0}
    passes.count("forward", 1000)
    passes.count("forward_backward", 3000)
    passes.count("forward_backward", 1000)
    assert throughput_metrics(phases, passes, generated_tokens=500, samples=64) == {
        "perf/gen_tokens": 500.0,
        "perf/gen_tokens_per_s": 250.0,
        "perf/train_tokens": 5000.0,
        "perf/train_tokens_per_s": 1250.0,
        "perf/samples_per_s": 8.0,
    }


def test_a_rank_that_sampled_nothing_logs_no_generation_rate():
    phases = Timer()
    phases.seconds["step"] = 1.0
    assert "perf/gen_tokens_per_s" not in throughput_metrics(phases, Timer(), 0, 8)


def test_each_pass_over_the_batch_counts_its_tokens_once(tiny_model_dir, tmp_path):
    # Two runs whose first batch is the same (seed, model, prompts; the update's settings come
    # after it): ORZ's one policy step passes every token through the critic's values, the
    # policy's step and the critic's twelve mini-batches (the old log-probs come from the step's own
    # pass); two policy steps need the old log-probs first, a fourth pass.
    rows = {}
    for steps in (1, 2):
        run = tmp_path / f"steps{steps}"
        args = [*cpu_default_on(tiny_model_dir, run), "--ppo.policy-steps-per-rollout", str(steps)]
        out = orz_cli(*args, "--max-steps", "1", "--no-progress")
        assert out.returncode == 0, out.stderr[-3000:]
        (rows[steps],) = [
            json.loads(line) for line in (run / "run" / "metrics.jsonl").read_text().splitlines()
        ]
    one, two = rows[1], rows[2]
    assert (
        one["perf/gen_tokens"] == two["perf/gen_tokens"] == pytest.approx(one["response_length/mean"] * 256)
    )
    assert "time/old_log_probs" not in one and "time/old_log_probs" in two
    assert 4 * one["perf/train_tokens"] == 3 * two["perf/train_tokens"]
    for row in (one, two):
        seconds = row["time/model_forward_backward"]
        assert row["perf/train_tokens_per_s"] == pytest.approx(row["perf/train_tokens"] / seconds)
        assert row["perf/gen_tokens_per_s"] == pytest.approx(row["perf/gen_tokens"] / row["time/generation"])
        assert row["perf/samples_per_s"] == pytest.approx(256 / row["time/step"])
        assert 0 < row["system/rss_gib"] <= row["system/peak_rss_gib"]
