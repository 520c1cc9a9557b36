"""``bench/real_shape.py`` at 2 layers of Qwen2.5-0.5B's full width and 151,936-row vocabulary:
the ORZ loop trains it through ``orz-rl train``, resumes it exactly, and reports its memory against
``--dry-run``'s plan (the full 24 layers run by hand: ``docs/scaling.md``)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

from orz_rl.models.dims import QWEN25
from orz_rl.tools.plan import actor_parameters, critic_parameters

from ..conftest import REPO

QUICK = ["--layers", "2", "--new-tokens", "16", "--prompts", "2", "--samples", "2", "--critic-steps", "2"]


def test_two_layers_at_full_width_train_resume_exactly_and_are_held_against_the_plan(tmp_path):
    out = tmp_path / "real_shape.json"
    args = [*QUICK, "--backend", "transformers", "--work", str(tmp_path / "work"), "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "bench/real_shape.py", *args], cwd=REPO, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    r = json.loads(out.read_text())
    assert "peak / plan" in done.stdout and "resume: largest actor parameter difference" in done.stdout

    dims = replace(QWEN25["Qwen/Qwen2.5-0.5B"], layers=2)
    assert r["actor_parameters"] == actor_parameters(dims)  # full width and vocabulary, 2 layers
    # A checkpoint is actor and critic weights and their AdamW m and v (float32): nothing twice.
    weights_and_moments = 3 * 4 * (actor_parameters(dims) + critic_parameters(dims))
    assert abs(r["checkpoint_gib"] * 2**30 / weights_and_moments - 1) < 0.01
    assert r["resume_largest_difference"] == 0.0
    assert r["generation_tokens_per_s"] > 0 and r["training_tokens_per_s"] > 0
    assert r["dtype"] == "float32" and not r["activation_checkpointing"]
    # The plan's verdict for the full shape in both dtypes is reported beside the measured run.
    assert set(r["full_shape_plans"]) == {"float32", "bfloat16"}
    full = r["full_shape_plans"]
    assert full["bfloat16"]["planned_gib"] < full["float32"]["planned_gib"]
    assert r["peak_over_plan"] == r["peak_rss_gib"] / r["planned_gib"]
