"""The CPU default recipe measurably learns: issue 2's bar, run for real (about 4 minutes)."""

from __future__ import annotations

from dataclasses import replace
from statistics import mean

import pytest

from orz_rl.recipes.cpu_default import CPU_DEFAULT
from orz_rl.trainer import Trainer


@pytest.mark.slow
def test_cpu_default_reward_rises_from_below_0_1_to_at_least_0_6_within_15_minutes(tiny_model_dir, tmp_path):
    cfg = replace(
        CPU_DEFAULT,
        model=replace(CPU_DEFAULT.model, path=str(tiny_model_dir), build_tiny_if_missing=False),
        data=replace(CPU_DEFAULT.data, train_file=str(tmp_path / "toy.json")),
        run_dir=tmp_path / "run",
        max_minutes=15.0,
        progress=False,
    )
    rewards = [m["reward/mean"] for m in Trainer(cfg).train()]
    assert mean(rewards[:10]) < 0.1, rewards[:10]
    ten_step_means = [mean(rewards[i - 10 : i]) for i in range(10, len(rewards) + 1)]
    assert max(ten_step_means) >= 0.6, ten_step_means[-10:]
