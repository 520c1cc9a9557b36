"""``bench/staleness_model.py``'s step-time model against hand-worked cases."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from orz_rl.config import ConfigError

from . import bench_module

model = bench_module("staleness_model")


def test_generation_lasts_the_slowest_engines_decode_steps_each_priced_by_its_unfinished_responses():
    args = model.Args(engines=1, decode_ms=1.0, per_sequence_ms=1.0, kv_ms_per_k_tokens=0.0, prompt_tokens=0)
    # Decode steps 0, 1, 2 with 3, 2, 1 responses unfinished: (1 + 3) + (1 + 2) + (1 + 1) ms.
    assert model.generation_seconds(torch.tensor([1, 2, 3]), args) == pytest.approx((0.009, 0.0))
    # Reading the cache: each unfinished response's prompt and tokens so far, 1 ms per 1,000.
    cached = replace(args, kv_ms_per_k_tokens=1.0, prompt_tokens=1000)
    assert model.generation_seconds(torch.tensor([1, 2, 3]), cached)[0] == pytest.approx(0.009 + 0.006004)
    # Dealt round-robin, engine 1 holds 2 and 4: (1 + 2) + (1 + 2) + (1 + 1) + (1 + 1) ms.
    two = replace(args, engines=2)
    assert model.generation_seconds(torch.tensor([1, 2, 3, 4]), two)[0] == pytest.approx(0.010)
    # The tail: the steps after 90 % of the responses ended (one of ten is left from step 1 on).
    lengths = torch.tensor([1] * 9 + [4])
    assert model.generation_seconds(lengths, args) == pytest.approx((0.011 + 0.006, 0.006))


def test_training_is_the_flops_of_both_models_passes_at_the_mfu():
    args = model.Args(parameters_b=1.0, training_gpus=1, peak_tflops=100.0, mfu=0.5)
    # (8 + 8 + 2) x 1e9 x 1e6 FLOPs at 50 TFLOP/s.
    assert model.training_seconds(1e6, args) == pytest.approx(360.0)


def test_one_step_behind_a_step_lasts_the_longer_of_generation_and_training():
    row = model.step_model(model.Args(), 2000.0)
    assert row["sync"] == pytest.approx(row["gen"] + row["train"] + 2.0)
    assert row["stale"] == pytest.approx(max(row["gen"], row["train"]) + 2.0)
    assert 1.0 < row["speed-up"] <= 2.0


def test_the_lengths_are_log_normal_of_the_given_mean_cut_at_the_limit():
    drawn = model.response_lengths(500.0, 0.8, 200_000, 10**9, seed=0)
    assert drawn.float().mean().item() == pytest.approx(500.0, rel=0.01)
    assert int(model.response_lengths(500.0, 0.8, 10_000, 800, seed=0).max()) == 800


def test_a_field_out_of_range_is_refused():
    with pytest.raises(ConfigError, match="engines = 0: must be at least 1"):
        model.main(model.Args(engines=0))
