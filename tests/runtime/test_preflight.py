"""Impossible configurations are reported together, by field, before any model loads."""

from __future__ import annotations

from dataclasses import asdict, replace

import pytest

from orz_rl.config import TrainConfig, resumable_fields
from orz_rl.recipes import RECIPES
from orz_rl.runtime.preflight import check_ranks, config_problems, resume_problems
from orz_rl.runtime.run_log import jsonable

from ..conftest import orz_cli_here


def test_every_cpu_recipe_is_possible():
    for name in ("cpu-default", "cpu-mixed", "cpu-tools"):
        assert config_problems(RECIPES[name][1])[1] == [], name


def test_responses_fewer_than_mini_batches_and_bad_counts_are_each_named():
    _, cpu = RECIPES["cpu-default"]
    cfg = replace(
        cpu,
        rollout=replace(cpu.rollout, prompts_per_step=2, samples_per_prompt=4, temperature=0.0),
        ppo=replace(cpu.ppo, critic_steps_per_rollout=12, micro_batch_size=0),
        keep_last=0,
    )
    assert config_problems(cfg)[1] == [
        "rollout.temperature = 0.0: must be above 0",
        "ppo.micro_batch_size = 0: must be at least 1",
        "keep_last = 0: must be at least 1",
        "rollout.prompts_per_step x rollout.samples_per_prompt = 8 responses cannot be split into "
        "ppo.critic_steps_per_rollout = 12 critic mini-batches (one response at least each)",
    ]


def test_the_cli_lists_every_problem_at_once_and_loads_no_model(tmp_path, tiny_model_dir):
    out = orz_cli_here(
        *(
            "train",
            "cpu-default",
            "--data.no-generate-toy-task",
            "--data.train-file",
            str(tmp_path / "no.json"),
        ),
        *("--task", "mixed", "--data.code-file", str(tmp_path / "no-code.jsonl"), "--eval.interval", "5"),
        *(
            "--eval.benchmarks",
            "math5000",
            "--rollout.samples-per-prompt",
            "1",
            "--rollout.prompts-per-step",
            "4",
        ),
        *("--model.path", str(tmp_path / "no-model"), "--model.no-build-tiny-if-missing"),
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "the configuration cannot run (5 problem(s)):" in out.stderr
    for expected in (
        "= 4 responses cannot be split into ppo.critic_steps_per_rollout = 12",
        f"data.train_file {str(tmp_path / 'no.json')!r} does not exist",
        f"data.code_file {str(tmp_path / 'no-code.jsonl')!r} does not exist",
        f"model.path {str(tmp_path / 'no-model')!r} does not exist",
        "eval.benchmarks: unknown benchmark 'math5000'",
    ):
        assert expected in out.stderr, expected
    assert "orz-rl: task" not in out.stdout  # nothing started: no engine, no model


def test_prompt_and_response_lengths_join_the_list_before_the_model_loads(tmp_path, tiny_model_dir):
    out = orz_cli_here(
        *("train", "cpu-default", "--model.path", str(tiny_model_dir), "--model.no-build-tiny-if-missing"),
        *("--data.train-file", str(tmp_path / "toy.json"), "--run-dir", str(tmp_path / "run")),
        *("--rollout.max-prompt-tokens", "8", "--rollout.max-new-tokens", "1020", "--keep-last", "0"),
    )
    assert out.returncode == 1
    assert "the configuration cannot run (3 problem(s)):" in out.stderr
    assert "keep_last = 0" in out.stderr
    assert (
        "rollout.max_prompt_tokens + rollout.max_new_tokens = 8 + 1020 exceeds the model's 1024" in out.stderr
    )
    assert "-token prompt, over rollout.max_prompt_tokens = 8" in out.stderr
    assert "orz-rl: task" not in out.stdout  # nothing started


def test_impossible_packing_and_layout_fields_are_each_named():
    _, cpu = RECIPES["cpu-default"]
    cfg = replace(
        cpu,
        ppo=replace(cpu.ppo, pack_tokens=-2),
        layout=replace(cpu.layout, nodes=0, vllm_engines=-1, vllm_tensor_parallel=0),
    )
    assert config_problems(cfg)[1] == [
        "ppo.pack_tokens = -2: must be at least -1",
        "layout.nodes = 0: must be at least 1",
        "layout.vllm_engines = -1: must be at least 0",
        "layout.vllm_tensor_parallel = 0: must be at least 1",
    ]


def test_a_checkpoint_from_before_a_field_existed_resumes_with_that_fields_default():
    _, cpu = RECIPES["cpu-default"]
    now = jsonable(asdict(cpu))
    saved = {k: v for k, v in now.items() if k != "task"}  # written before `task` was a field
    assert resume_problems(saved, now) == []
    mixed = jsonable(asdict(replace(cpu, task="mixed")))
    assert resume_problems(saved, mixed) == [
        "task = 'mixed' differs from the checkpoint's run ('math'); "
        "a resumed run keeps its settings (use a new run_dir for new ones)"
    ]


def test_estimator_problems_are_named_unknown_too_few_samples_wrong_aggregation_misplaced_kl():
    _, cpu = RECIPES["cpu-default"]
    alone = replace(cpu, rollout=replace(cpu.rollout, samples_per_prompt=1))
    assert config_problems(replace(alone, ppo=replace(cpu.ppo, advantage="rloo")))[1] == [
        "ppo.advantage = 'rloo' compares the responses to one prompt: "
        "rollout.samples_per_prompt = 1 must be at least 2"
    ]
    assert config_problems(replace(alone, ppo=replace(cpu.ppo, advantage="reinforce_pp")))[1] == []
    assert config_problems(replace(cpu, ppo=replace(cpu.ppo, advantage="dr_grpo")))[1] == [
        "ppo.advantage = 'dr_grpo' is defined with its own loss aggregation: "
        "set ppo.aggregation = 'seq-mean-token-sum-norm' (it is 'seq-mean-token-mean')"
    ]
    assert config_problems(replace(cpu, ppo=replace(cpu.ppo, advantage="ppo")))[1] == [
        "ppo.advantage: unknown advantage estimator 'ppo'; "
        "expected one of gae, grpo, dr_grpo, rloo, reinforce_pp, orz_grpo"
    ]
    dr = replace(cpu.ppo, advantage="dr_grpo", aggregation="seq-mean-token-sum-norm")
    assert config_problems(replace(cpu, ppo=dr))[1] == []
    penalty = replace(cpu.ppo, advantage="grpo", kl_coef=0.01, kl_in="reward")
    assert config_problems(replace(cpu, ppo=penalty))[1] == [
        "ppo.kl_in = 'reward': ppo.advantage = 'grpo' scores whole responses, so a per-token penalty has "
        "nowhere to go; use ppo.kl_in = 'loss' (GRPO's form)"
    ]
    assert config_problems(replace(cpu, ppo=replace(penalty, kl_in="loss")))[1] == []


def test_an_overlong_buffer_past_the_limit_and_dynamic_sampling_of_lone_samples_are_named():
    _, cpu = RECIPES["cpu-default"]
    r = replace(cpu.rollout, max_new_tokens=64, samples_per_prompt=1, dynamic_sampling=True)
    bad = replace(cpu, rollout=r, reward=replace(cpu.reward, overlong_penalty=65))
    assert config_problems(bad)[1] == [
        "reward.overlong_penalty = 65 tokens is longer than the response limit it counts back from "
        "(rollout.max_new_tokens = 64)",
        "rollout.dynamic_sampling drops groups whose rewards are all equal: with "
        "rollout.samples_per_prompt = 1 every group would be dropped (2 at least)",
    ]
    tools = replace(r, samples_per_prompt=2, tools="python", tool=replace(r.tool, max_total_tokens=80))
    assert config_problems(replace(bad, rollout=tools))[1] == []


def test_staleness_without_an_importance_weight_beside_the_critic_overlap_or_under_torchrun_is_named():
    _, cpu = RECIPES["cpu-default"]
    stale = replace(cpu, rollout=replace(cpu.rollout, max_staleness=1))
    assert config_problems(replace(stale, ppo=replace(cpu.ppo, overlap_critic_update=True)))[1] == [
        "rollout.max_staleness = 1 trains on responses of older policies: set rollout.tis_cap (2, say) so "
        "that each token is weighted by its behaviour log-prob",
        "ppo.overlap_critic_update and rollout.max_staleness: rollouts ahead already sample during the "
        "whole step; choose one",
    ]
    weighted = replace(stale, rollout=replace(stale.rollout, tis_cap=2.0))
    assert config_problems(weighted)[1] == []
    check_ranks(weighted, "vllm", 1)
    with pytest.raises(ValueError, match="rollout.max_staleness = 1 samples on rank 0 .* not under torchrun"):
        check_ranks(replace(weighted, layout=replace(cpu.layout, vllm_engines=2)), "vllm", 2)


def test_a_resume_may_change_the_fields_marked_resumable_and_no_other():
    _, cpu = RECIPES["cpu-default"]
    saved = jsonable(asdict(cpu))
    how_it_runs = replace(
        cpu,
        max_steps=7,
        eval=replace(cpu.eval, interval=3),  # a nested configuration marked as a whole
        rollout=replace(cpu.rollout, backend="vllm", vllm_cpu_kv_cache_gib=2.0),  # single fields
    )
    assert resume_problems(saved, jsonable(asdict(how_it_runs))) == []
    # Beside a marked field of the same configuration, an unmarked one is still refused.
    other = replace(how_it_runs, rollout=replace(how_it_runs.rollout, max_new_tokens=33))
    assert resume_problems(saved, jsonable(asdict(other))) == [
        f"rollout.max_new_tokens = 33 differs from the checkpoint's run ({cpu.rollout.max_new_tokens}); "
        "a resumed run keeps its settings (use a new run_dir for new ones)"
    ]
    assert "eval." in resumable_fields(TrainConfig) and "rollout.backend" in resumable_fields(TrainConfig)
    assert "rollout.max_new_tokens" not in resumable_fields(TrainConfig)
