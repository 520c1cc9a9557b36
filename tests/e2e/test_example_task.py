"""A task that is not orz-rl's: examples/countdown, installed as a package of its own, trains
through ``orz-rl train --task countdown`` on the tiny model, rewarded by its own rule."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path

import pytest
import torch

from orz_rl import keys
from orz_rl.config import SandboxConfig, ToolConfig
from orz_rl.envs import EnvArgs, get_task
from orz_rl.envs.python_tool import with_python_tool
from orz_rl.models.loading import load_tokenizer
from orz_rl.rewards.math_answers import extract_answer
from orz_rl.rewards.sandbox import Sandbox
from orz_rl.rollout.multi_turn import MultiTurnCollector
from orz_rl.rollout.training_batch import ToTrainingBatch

from ..conftest import REPO, orz_cli
from ..rollout.scripted_policy import ScriptedPolicy
from ..sandbox_helpers import ISOLATIONS


def countdown():
    try:
        import orz_countdown
    except ImportError:
        pytest.fail("orz_countdown is not installed: `make setup` installs examples/countdown")
    return orz_countdown


def box(expression: str) -> str:
    return f"<think> 3 5 2 </think> <answer> \\boxed{{{expression}}} </answer>"


def test_the_example_is_its_own_distribution_and_registers_its_task_by_entry_point():
    package = Path(countdown().__file__).resolve().parent
    assert (REPO / "orz_rl") not in package.parents and package.parent.name == "countdown"
    points = distribution("orz-rl-countdown").entry_points.select(group="orz_rl.tasks")
    assert [(p.name, p.value) for p in points] == [("countdown", "orz_countdown.task:TASK")]
    out = orz_cli("tasks")
    assert out.returncode == 0 and "countdown  the Countdown numbers game" in out.stdout


def test_a_wrong_expression_scores_zero_and_a_hostile_one_is_rejected_unevaluated(tmp_path):
    from orz_countdown.task import CountdownProblem

    countdown()
    problem = CountdownProblem((3, 5, 2), 16)
    env = get_task("countdown").make_env([problem], EnvArgs(prompts_per_step=1, samples_per_prompt=5))
    marker = tmp_path / "pwned"
    hostile = f"__import__('pathlib').Path('{marker}').touch() or 16"
    responses = [box("(3 + 5) * 2"), box("3 + 5 + 2"), box("(3 + 5) * 2 * 1"), box(hostile), "no box"]
    rewards = env.score(responses, torch.ones(5, dtype=torch.bool), [problem] * 5)
    assert rewards.tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert env.last_score_stats == {
        "countdown/correct": 1,
        "countdown/wrong_value": 1,
        "countdown/wrong_numbers": 1,
        "countdown/rejected": 1,
        "countdown/no_answer": 1,
        "countdown/cut": 0,
    }
    assert not marker.exists()


def test_countdown_runs_with_the_python_tool_and_is_graded_by_its_own_rule(tiny_model_dir):
    # A task of one's own gets the tool without a line of it changed: its env is wrapped, the
    # model checks its arithmetic in the sandbox, and countdown's rule grades the final answer.
    countdown()
    from orz_countdown.task import CountdownProblem

    problems = [CountdownProblem((3, 5, 2), 16), CountdownProblem((3, 5, 2), 15)]
    task_env = get_task("countdown").make_env(problems, EnvArgs(prompts_per_step=2, samples_per_prompt=2))
    tokenizer = load_tokenizer(str(tiny_model_dir))

    def respond(read: str) -> str:
        if "\n<output>\n" not in read:
            return "<code>\nprint((3 + 5) * 2, 3 + 5 + 2)\n</code>"
        # Right for 16; for 15 a wrong value, which countdown's own rule must tell apart.
        return box("(3 + 5) * 2") if "make 16" in read else box("3 + 5 + 2")

    config = SandboxConfig(isolation=ISOLATIONS[0], workers=2, timeout=3)
    with Sandbox(config, announce=False) as sandbox:
        env = with_python_tool(task_env, tokenizer, sandbox, ToolConfig(), turn_tokens=64)
        collector = MultiTurnCollector(
            env, policy=ScriptedPolicy(tokenizer, respond), postproc=ToTrainingBatch(tokenizer.pad_token_id)
        )
        batch = collector.postproc(collector.multi_turn_rollout())
    assert env.last_tool_stats["calls"] == 4 and env.last_tool_stats["errors"] == 0
    assert sorted(batch.get(keys.EPISODE_REWARD).tolist()) == [0.0, 0.0, 1.0, 1.0]
    stats = env.last_score_stats
    assert (stats["countdown/correct"], stats["countdown/wrong_value"]) == (2, 2)


def test_a_tower_of_powers_is_rejected_at_once():
    countdown()  # Evaluated, 9**9**9**9 would never end: the rule must refuse it from its syntax alone.
    code = "from orz_countdown.arithmetic import judge; print(judge('9**9**9**9', [9, 9, 9, 9], 1))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "rejected", out.stderr


def test_countdown_trains_five_steps_on_the_tiny_model_with_rewards_from_its_rule(tiny_model_dir, tmp_path):
    countdown()
    from orz_countdown.arithmetic import judge

    # One number each. The tiny model, never trained on this prompt, seldom boxes an answer
    # (255 of 256 responses a step had none in a run of 2026-12-02, earlier runs a few correct
    # ones): what is checked is that every response got the rule's verdict and its reward. The
    # correct verdict's reward of 1 is the env test above.
    data = tmp_path / "countdown.jsonl"
    data.write_text("".join(json.dumps({"numbers": [k], "target": k}) + "\n" for k in range(1, 11)))
    run = tmp_path / "run"
    out = orz_cli(
        *("train", "cpu-default", "--task", "countdown", "--model.path", str(tiny_model_dir)),
        *("--model.no-build-tiny-if-missing", "--data.no-generate-toy-task", "--data.train-file", str(data)),
        *("--run-dir", str(run), "--max-steps", "5", "--no-progress"),
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "orz-rl: task countdown |" in out.stdout
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5]
    verdicts = ("correct", "wrong_value", "wrong_numbers", "rejected", "no_answer", "cut")
    for r in rows:
        assert sum(r[f"countdown/{v}"] for v in verdicts) == 256
        assert r["reward/mean"] == r["countdown/correct"] / 256
    for logged in map(json.loads, (run / "rollouts.jsonl").read_text().splitlines()):
        response = "".join(logged["tokens"])
        target = int(logged["prompt"].split("make ")[1].split(".")[0])
        verdict = judge(extract_answer(response) or "", [target], target)
        assert (verdict == "correct") == (logged["reward"] == 1.0), response


def test_a_recipe_in_the_example_package_trains_by_module_name(tiny_model_dir, tmp_path):
    countdown()
    run = tmp_path / "run"
    out = orz_cli(
        *("train", "orz_countdown.recipes:CPU", "--model.path", str(tiny_model_dir)),
        *("--model.no-build-tiny-if-missing", "--run-dir", str(run), "--max-steps", "2", "--no-progress"),
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "orz-rl: task countdown |" in out.stdout
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
