"""A recipe of one's own, in a file outside the package, trains through ``orz-rl train FILE:NAME``
with the same field overrides and checks as the built-in ones."""

from __future__ import annotations

import json

from ..conftest import orz_cli

RECIPE = '''
from dataclasses import replace
from pathlib import Path

from orz_rl.config import DataConfig, RolloutConfig
from orz_rl.recipes.cpu_default import CPU_DEFAULT

MINE = replace(
    CPU_DEFAULT,
    model=replace(CPU_DEFAULT.model, path="{model}", build_tiny_if_missing=False),
    data=DataConfig(train_file="{data}", generate_toy_task=True, toy_max_operand=3),
    rollout=RolloutConfig(prompts_per_step=4, samples_per_prompt=4, max_new_tokens=24, max_prompt_tokens=256),
    run_dir=Path("{run}"),
    max_steps=3,
)
'''


def test_a_recipe_in_a_file_of_ones_own_trains_with_overrides(tiny_model_dir, tmp_path):
    run = tmp_path / "run"
    recipe = tmp_path / "my_recipes.py"
    recipe.write_text(RECIPE.format(model=tiny_model_dir, data=tmp_path / "toy.json", run=run))
    help_out = orz_cli("train", f"{recipe}:MINE", "--help")
    assert help_out.returncode == 0 and f"usage: orz-rl train {recipe}:MINE" in help_out.stdout
    out = orz_cli("train", f"{recipe}:MINE", "--max-steps", "2", "--no-progress", timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2  # the override, not the recipe's 3
    config = json.loads((run / "config.json").read_text())
    assert config["rollout"]["prompts_per_step"] == 4 and config["data"]["toy_max_operand"] == 3
    bad = orz_cli("train", f"{recipe}:MINE", "--rollout.prompts-per-step", "0")
    assert bad.returncode == 1 and "rollout.prompts_per_step = 0: must be at least 1" in bad.stderr
