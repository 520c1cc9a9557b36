"""``orz-rl train cpu-tools``: the tiny model learns to call the Python tool (issue 35's bar).

Run as a user runs it, in a process of its own, with vLLM generating token in/token out (the
backend of every GPU run; the CPU default's learning test covers transformers' ``generate``).
It stops once the last ten steps' mean reward reaches 0.6. Without the tool the same model stays
near 0 (``python bench/tools.py``, too long for the suite).
"""

from __future__ import annotations

import json
from statistics import mean

import pytest

from orz_rl.recipes.cpu_default import CPU_TOOLS

from ..conftest import orz_cli
from ..sandbox_helpers import sandbox_processes


@pytest.mark.slow
def test_cpu_tools_learns_to_call_the_tool_and_reaches_0_6_within_8_minutes(tools_model_dir, tmp_path):
    out = orz_cli(
        *("train", "cpu-tools", "--model.path", str(tools_model_dir), "--model.no-build-tiny-if-missing"),
        *("--data.train-file", str(tmp_path / "products.json"), "--run-dir", str(tmp_path / "run")),
        *("--rollout.backend", "vllm", "--stop-at-reward", "0.6", "--max-minutes", "8", "--no-progress"),
        timeout=12 * 60,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "reached 0.6" in out.stdout, out.stdout[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    n = CPU_TOOLS.rollout.prompts_per_step * CPU_TOOLS.rollout.samples_per_prompt
    calls = [r["tool/calls"] / n for r in rows]
    rewards = [r["reward/mean"] for r in rows]
    # It starts calling now and then (a fifth of its pre-training), and learns to call every time.
    assert calls[0] < 0.35 and rewards[0] < 0.35, (calls[:3], rewards[:3])
    assert mean(rewards[-10:]) >= 0.6 and mean(calls[-3:]) > 0.7, (rewards, calls)
    for r in rows:
        assert r["tool/turns"] == n + r["tool/calls"]  # one call, then the answer
        # Sampled at temperature 1, a program is now and then malformed: an error comes back.
        assert r["tool/errors"] <= 0.1 * r["tool/calls"] and r["tool/ended_by_budget"] == 0
        assert r["time/generation"] > 0 and r["time/scoring"] > 0
    # The engine's log-probs match the trainer's as in single-turn runs (fp32: ~5e-7), however
    # many trajectories called the tool: nothing was re-tokenised between turns.
    drift = [r["rollout/logprob_abs_diff_mean"] for r in rows]
    assert max(drift) < 1e-5 and max(drift[-3:]) < 3 * mean(drift[:3]), drift
    assert not sandbox_processes()
