"""``bench/tool_overlap.py`` refuses a value out of range before it builds a model or starts vLLM."""

from __future__ import annotations

import pytest

from orz_rl.config import ConfigError

from . import bench_module


def test_a_field_out_of_range_is_refused_before_the_model_is_built(tmp_path):
    tool_overlap = bench_module("tool_overlap")
    model = tmp_path / "model"
    args = tool_overlap.Args(rounds=0, latencies=(0.0, -0.5), model=str(model))
    with pytest.raises(ConfigError) as refused:
        tool_overlap.main(args)
    assert "rounds = 0: must be at least 1" in str(refused.value)
    assert "latencies = (0.0, -0.5): must be at least 0" in str(refused.value)
    assert not model.exists()
