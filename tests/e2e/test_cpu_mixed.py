"""The CPU default switched to math + code (``orz-rl train cpu-mixed``): code rewards end to end.

A short run as a user starts it, in a process of its own: the sandbox announces
its isolation, every step runs the policy's programs and logs their verdicts.
"""

from __future__ import annotations

import json

import pytest

from orz_rl.models.tiny import build, tiny_config_for
from orz_rl.recipes.cpu_default import CPU_MIXED
from orz_rl.rewards.code_judge import VERDICTS

from ..conftest import orz_cli
from ..sandbox_helpers import sandbox_processes


@pytest.fixture(scope="module")
def mixed_model_dir(tmp_path_factory):
    return build(tiny_config_for(CPU_MIXED.model, tmp_path_factory.mktemp("tiny") / "tiny-qwen2-mixed"))


@pytest.mark.slow
def test_a_short_mixed_run_scores_programs_in_the_sandbox_every_step(mixed_model_dir, tmp_path):
    out = orz_cli(
        *("train", "cpu-mixed", "--model.path", str(mixed_model_dir), "--model.no-build-tiny-if-missing"),
        *("--data.train-file", str(tmp_path / "toy.json"), "--data.code-file", str(tmp_path / "code.jsonl")),
        *("--run-dir", str(tmp_path / "run"), "--max-steps", "4", "--no-progress"),
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "orz-rl sandbox: unshare: no network" in out.stdout or "orz-rl sandbox: bwrap" in out.stdout
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    n = CPU_MIXED.rollout.prompts_per_step * CPU_MIXED.rollout.samples_per_prompt
    for row in rows:
        code_responses = sum(row[f"code/{v}"] for v in VERDICTS)
        # Every response to a code prompt has one verdict; the samples of a prompt go together.
        assert 0 < code_responses < n and code_responses % CPU_MIXED.rollout.samples_per_prompt == 0
        assert row["code/programs_run"] > 0
        assert row["code/no_code"] < code_responses  # the tiny model writes programs
        assert row["time/scoring"] > 0
    assert not sandbox_processes()
