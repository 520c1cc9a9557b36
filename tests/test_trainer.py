"""The training loop end to end on the embedded model (a few steps)."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace

import pytest
import torch

from orz_rl import keys
from orz_rl.advantages.grpo import grpo_scores
from orz_rl.config import (
    EvalDuringTrainingConfig,
    OptimConfig,
    PPOConfig,
    RolloutConfig,
    ToolConfig,
    TrainConfig,
)
from orz_rl.models.loading import load_causal_lm, load_tokenizer
from orz_rl.ppo.critic import Critic
from orz_rl.problems.problem import Problem
from orz_rl.problems.prompts import CALL_END, render_prompt
from orz_rl.recipes import RECIPES
from orz_rl.rollout.dynamic_sampling import differing_groups
from orz_rl.rollout.weight_sync import vLLMInProcessUpdater
from orz_rl.runtime.preflight import length_problems
from orz_rl.trainer import Trainer

DOCUMENTED = [
    "step",
    "reward/mean",
    "reward/pass@4",
    "response_length/mean",
    "response_length/std",
    "response_length/correct_mean",
    "response_length/incorrect_mean",
    "response/truncated_share",
    "response/repetition_mean",
    "reflection/wait",
    "reflection/recheck",
    "reflection/retry",
    "reflection/alternatively",
    "reflection/however",
    "actor/clip_fraction",
    "actor/loss_objective",
    "actor/grad_norm",
    "critic/loss_critic",
    "critic/value_clip_fraction",
    "advantage/mean",
    "advantage/abs_mean",
    "time/generation",
    "time/scoring",
    "time/critic_values",
    "time/advantages",
    "time/policy_update",
    "time/critic_update",
    "time/weight_sync",
    "time/step",
    "grader/checked",
    "grader/quick",
    "grader/timeouts",
    "grader/failures",
    "data/policy_version",
    "rollout/logprob_abs_diff_mean",
    "rollout/logprob_abs_diff_max",
    "rollout/logprob_k3_kl",
    "system/peak_rss_gib",
    "system/rss_gib",
    "perf/gen_tokens",
    "perf/gen_tokens_per_s",
    "perf/train_tokens",
    "perf/train_tokens_per_s",
    "perf/samples_per_s",
]


def _vllm_log_probs(llm, ids: list[int]) -> torch.Tensor:
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    out = llm.generate(TokensPrompt(prompt_token_ids=ids), SamplingParams(max_tokens=1, prompt_logprobs=0))
    return torch.tensor([d[t].logprob for d, t in zip(out[0].prompt_logprobs[1:], ids[1:], strict=True)])


@torch.no_grad()
def _hf_log_probs(model, ids: list[int]) -> torch.Tensor:
    logits = model(torch.tensor([ids])).logits[0, :-1].float()
    return logits.log_softmax(-1).gather(-1, torch.tensor(ids[1:])[:, None]).squeeze(-1)


def test_short_run_logs_documented_metrics_and_saves_hf_checkpoints(tiny_model_dir, vllm_engine, tmp_path):
    _, cpu = RECIPES["cpu-default"]
    eval_file = tmp_path / "toy_eval.json"
    items = [
        {"prompt": [{"from": "user", "value": f"What is {a} + 1?"}], "final_answer": str(a + 1)}
        for a in range(3)
    ]
    eval_file.write_text(json.dumps(items))
    # A programming benchmark beside it: a math run evaluates it by the code task's rule.
    code_file = tmp_path / "toy_code.jsonl"
    code_file.write_text(json.dumps({"question": "Print 2.", "stdio": [{"input": "", "output": "2"}]}) + "\n")
    cfg = replace(
        cpu,
        model=replace(cpu.model, path=str(tiny_model_dir), build_tiny_if_missing=False),
        data=replace(cpu.data, train_file=str(tmp_path / "toy.json")),
        rollout=RolloutConfig(
            prompts_per_step=4, samples_per_prompt=4, max_new_tokens=24, max_prompt_tokens=64, backend="vllm"
        ),
        ppo=PPOConfig(micro_batch_size=8, critic_steps_per_rollout=3),
        eval=EvalDuringTrainingConfig(interval=2, benchmarks=(str(eval_file), str(code_file)), samples=2),
        run_dir=tmp_path / "run",
        max_steps=2,
        progress=False,
    )
    trainer = Trainer(cfg, llm=vllm_engine)
    assert trainer.backend == "vllm"
    before = {n: p.detach().clone() for n, p in trainer.learner.actor_model.named_parameters()}
    critic_before = {n: p.detach().clone() for n, p in trainer.learner.critic.named_parameters()}
    history = trainer.train()
    assert len(history) == 2
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    # evaluation at the configured steps only (interval 2): step 2
    assert "eval/toy_eval/avg@2" not in rows[0]
    assert 0 <= rows[1]["eval/toy_eval/avg@2"] <= rows[1]["eval/toy_eval/pass@2"] <= 1
    assert rows[1]["eval/toy_eval/questions"] == 3 and rows[1]["time/eval"] > 0
    assert rows[1]["eval/toy_code/questions"] == 1 and "eval/toy_code/maj@2" not in rows[1]
    assert [task.name for task, _ in trainer.rollouts.eval_sets.values()] == ["math", "code"]
    for key in DOCUMENTED:
        assert key in rows[0], key
    assert 0.0 <= rows[0]["reward/mean"] <= 1.0
    moved = [n for n, p in trainer.learner.actor_model.named_parameters() if not torch.equal(p, before[n])]
    assert moved, "the actor took no step"
    assert any(not torch.equal(p, critic_before[n]) for n, p in trainer.learner.critic.named_parameters())
    final = tmp_path / "run" / "checkpoints" / "final"
    actor = load_causal_lm(str(final / "actor"))
    for n, p in actor.named_parameters():
        torch.testing.assert_close(p, dict(trainer.learner.actor_model.named_parameters())[n])
    critic = Critic.from_pretrained(final / "critic")
    torch.testing.assert_close(critic.value_head.weight, trainer.learner.critic.value_head.weight)
    # On-policy: step k's responses were sampled by the weights after k - 1 policy steps...
    assert [r["data/policy_version"] for r in rows] == [0, 1]
    assert all(r["time/weight_sync"] > 0 for r in rows)
    # One policy step per rollout: no pass before the update computes the old log-probs.
    assert trainer.learner.policy_loss.on_policy_without_old_log_probs
    assert all("time/old_log_probs" not in r for r in rows)
    # ...and after the run the engine holds the trainer's actor.
    ids = trainer.tokenizer(render_prompt("What is 3 + 4?") + " 3 + 4 </think> <answer>")["input_ids"]
    base = load_causal_lm(str(tiny_model_dir)).eval()
    assert (_hf_log_probs(actor, ids) - _hf_log_probs(base, ids)).abs().max() > 1e-3
    try:
        served = _vllm_log_probs(vllm_engine, ids)
        torch.testing.assert_close(served, _hf_log_probs(actor, ids), atol=1e-4, rtol=0)
    finally:
        vLLMInProcessUpdater(vllm_engine).push_weights(base)  # the engine is shared by the session


def _small_cpu_default(model_dir, tmp_path, backend: str = "vllm", **fields) -> TrainConfig:
    """The CPU default on 4 prompts x 4 samples of at most 24 tokens, run under ``tmp_path``."""
    _, cpu = RECIPES["cpu-default"]
    rollout = RolloutConfig(
        prompts_per_step=4, samples_per_prompt=4, max_new_tokens=24, max_prompt_tokens=64, backend=backend
    )
    return replace(
        cpu,
        model=replace(cpu.model, path=str(model_dir), build_tiny_if_missing=False),
        data=replace(cpu.data, train_file=str(tmp_path / "toy.json")),
        rollout=rollout,
        run_dir=tmp_path / "run",
        progress=False,
        **fields,
    )


def test_with_two_policy_steps_per_rollout_a_pass_before_the_update_gives_the_old_log_probs(
    tiny_model_dir, vllm_engine, tmp_path
):
    ppo = PPOConfig(micro_batch_size=8, critic_steps_per_rollout=2, policy_steps_per_rollout=2)
    cfg = _small_cpu_default(tiny_model_dir, tmp_path, ppo=ppo, max_steps=1)
    trainer = Trainer(cfg, llm=vllm_engine)
    try:
        assert not trainer.learner.policy_loss.on_policy_without_old_log_probs
        [row] = trainer.train()
    finally:
        base = load_causal_lm(str(tiny_model_dir))
        vLLMInProcessUpdater(vllm_engine).push_weights(base)  # the engine is shared by the session
    assert row["time/old_log_probs"] > 0
    # The second step's ratio is measured against the rollout's policy, which the first step left.
    assert row["actor/approx_kl"] > 0


def test_the_step_split_counts_transformers_generate_as_the_engines_model_time(tiny_model_dir, tmp_path):
    ppo = PPOConfig(micro_batch_size=8, critic_steps_per_rollout=2, overlap_critic_update=True)
    cfg = _small_cpu_default(tiny_model_dir, tmp_path, backend="transformers", ppo=ppo, max_steps=2)
    trainer = Trainer(cfg)
    assert trainer.backend == "transformers"
    first, second = trainer.train()
    # generate is most of the generation phase; the rest is TorchRL's and the env's work.
    assert 0.5 * first["time/generation"] < first["time/model_engine"] < first["time/generation"]
    # The second rollout was sampled during the first step's critic update: the second step holds
    # only the part of its engine time that it waited for.
    assert second["time/model_engine"] <= second["time/generation_wait"]
    for row in (first, second):
        outside = row["time/step"] - row["time/model_engine"] - row["time/model_forward_backward"]
        assert row["time/outside_model"] == pytest.approx(outside)


def test_a_critic_free_run_builds_steps_and_saves_no_critic_and_resumes_without_one(tiny_model_dir, tmp_path):
    ppo = PPOConfig(micro_batch_size=8, advantage="grpo")
    cfg = _small_cpu_default(tiny_model_dir, tmp_path, backend="transformers", ppo=ppo, max_steps=2)
    # 8 x 8 responses: with 4 x 4 (reward ~0.05 a response) the last step had no group of mixed
    # rewards on one CPU in two, so nothing to check GRPO's advantages on.
    cfg = replace(cfg, rollout=replace(cfg.rollout, prompts_per_step=8, samples_per_prompt=8))
    trainer = Trainer(cfg)
    learner = trainer.learner
    assert learner.critic is None and learner.value_operator is None and learner.value_loss is None
    assert learner.critic_optim is None and learner.critic_sched is None
    trained = {id(p) for group in learner.actor_optim.param_groups for p in group["params"]}
    assert trained == {id(p) for p in learner.actor_model.parameters()}, "only the actor's parameters train"
    history = trainer.train()
    for row in history:
        critic_keys = [
            k for k in row if k.startswith("critic/") or k in ("time/critic_values", "time/critic_update")
        ]
        assert not critic_keys, f"a run without a critic logged {critic_keys}"
    # The last step trained on GRPO's advantages: each response's group-standardised reward.
    rows = trainer.last_buffer[:]
    mask = rows[keys.RESPONSE_MASK]
    scores = grpo_scores(rows[keys.EPISODE_REWARD], cfg.rollout.samples_per_prompt)
    torch.testing.assert_close(rows[keys.ADVANTAGE].squeeze(-1), torch.where(mask, scores[:, None], 0.0))
    assert scores.abs().sum() > 0, "a step with some signal (the seed is fixed)"
    final = cfg.run_dir / "checkpoints" / "final"
    assert (final / "actor").is_dir() and not (final / "critic").exists()
    state = torch.load(final / "trainer_state.pt", weights_only=False)
    assert not {"critic_optim", "critic_sched"} & state.keys()
    resumed = Trainer(replace(cfg, resume=cfg.run_dir, max_steps=3))
    assert resumed.step == 2 and resumed.learner.critic is None
    [row] = resumed.train()
    assert row["actor/lr"] > history[-1]["actor/lr"], "the actor's schedule continued"


def test_a_kl_run_holds_a_frozen_reference_saves_it_and_resumes_from_its_copy(tiny_model_dir, tmp_path):
    ppo = PPOConfig(micro_batch_size=8, kl_coef=0.05)
    optim = OptimConfig(actor_lr=5e-4, warmup_steps=1, critic_lr=2e-3, critic_warmup_steps=1)
    cfg = _small_cpu_default(
        tiny_model_dir, tmp_path, backend="transformers", ppo=ppo, optim=optim, max_steps=2
    )
    trainer = Trainer(cfg)
    reference = trainer.learner.reference
    assert not any(p.requires_grad for p in reference.parameters()), "frozen"
    trained = {id(p) for group in trainer.learner.actor_optim.param_groups for p in group["params"]}
    assert not trained & {id(p) for p in reference.parameters()}
    before = {n: p.clone() for n, p in reference.state_dict().items()}
    first, second = trainer.train()
    # Step 1 scores with the base model itself: no KL but the rounding of other packed rows (~1e-14);
    # step 2's actor has moved.
    assert abs(first["actor/kl_ref"]) < 1e-10 and abs(first["actor/loss_kl"]) < 1e-10
    assert second["actor/kl_ref"] > 1e-6 and second["time/reference_log_probs"] > 0
    for name, weight in reference.state_dict().items():
        assert torch.equal(weight, before[name]), f"the reference moved: {name}"
    final = cfg.run_dir / "checkpoints" / "final"
    saved = load_causal_lm(str(final / "reference"))
    for name, weight in saved.state_dict().items():
        assert torch.equal(weight, before[name]), name
    resumed = Trainer(replace(cfg, resume=cfg.run_dir, max_steps=3))
    assert resumed.learner.reference is not None and resumed.learner.reference.name_or_path == str(
        final / "reference"
    )


class _SkipsTheFirstSync(Trainer):
    """A trainer whose engine misses the first step's weight sync, as a broken sync would."""

    def sync_weights(self, timer) -> None:
        if self.step > 0:
            super().sync_weights(timer)


@pytest.mark.parametrize("stale", [False, True])
def test_an_engine_that_missed_a_sync_shows_in_the_next_steps_mismatch_metrics(
    tiny_model_dir, vllm_engine, tmp_path, stale
):
    optim = OptimConfig(actor_lr=5e-4, warmup_steps=1, critic_lr=2e-3, critic_warmup_steps=1)
    cfg = _small_cpu_default(
        tiny_model_dir, tmp_path, ppo=PPOConfig(micro_batch_size=8), optim=optim, max_steps=2
    )
    trainer = (_SkipsTheFirstSync if stale else Trainer)(cfg, llm=vllm_engine)
    try:
        first, second = trainer.train()
    finally:
        vLLMInProcessUpdater(vllm_engine).push_weights(load_causal_lm(str(tiny_model_dir)))
    # Before any update engine and trainer hold the same weights: only kernels differ.
    assert first["rollout/logprob_abs_diff_mean"] < 1e-4
    if stale:  # the second rollout came from the first step's weights, scored by the second's
        assert second["rollout/logprob_abs_diff_mean"] > 1e-3
        assert second["rollout/logprob_k3_kl"] > 1e-4
    else:
        assert second["rollout/logprob_abs_diff_mean"] < 1e-4
        assert second["rollout/logprob_abs_diff_max"] < 1e-4


class _RecordingTrainer(Trainer):
    """Keeps each step's sampled tokens, advantages and critic weights (after its update)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.records: list[tuple] = []

    def train_step(self) -> dict[str, float]:
        metrics = super().train_step()
        rows = self.last_buffer[:]
        critic = self.learner.critic
        critic = {n: p.detach().clone() for n, p in critic.named_parameters()} if critic is not None else {}
        self.records.append((rows[keys.ACTION].clone(), rows[keys.ADVANTAGE].clone(), critic))
        return metrics


@pytest.mark.parametrize("backend", ["vllm", "transformers"])
def test_sampling_the_next_rollout_during_the_critic_update_changes_no_number(
    tiny_model_dir, tmp_path, request, backend
):
    llm = request.getfixturevalue("vllm_engine") if backend == "vllm" else None
    runs = {}
    for overlap in (False, True):
        ppo = PPOConfig(micro_batch_size=8, critic_steps_per_rollout=3, overlap_critic_update=overlap)
        cfg = _small_cpu_default(
            tiny_model_dir, tmp_path / str(overlap), backend=backend, ppo=ppo, max_steps=4, save_interval=0
        )
        trainer = _RecordingTrainer(cfg, llm=llm)
        try:
            history = trainer.train()
        finally:
            if llm is not None:  # the engine is shared by the session
                vLLMInProcessUpdater(llm).push_weights(load_causal_lm(str(tiny_model_dir)))
        # Every step but the first trained on a rollout sampled during the last critic update.
        assert ["time/generation_wait" in m for m in history] == [False] + [overlap] * 3
        runs[overlap] = trainer.records
    for step, (before, during) in enumerate(zip(runs[False], runs[True], strict=True), 1):
        assert torch.equal(before[0], during[0]), f"step {step}: other responses"
        assert torch.equal(before[1], during[1]), f"step {step}: other advantages"
        for name, weight in before[2].items():
            assert torch.equal(weight, during[2][name]), f"step {step}: critic {name}"


def test_prompts_over_the_limit_and_lengths_over_the_model_are_one_error_naming_the_field(tiny_model_dir):
    _, cpu = RECIPES["cpu-default"]
    tok = load_tokenizer(str(tiny_model_dir))
    short = Problem("What is 1 + 1?", "2")
    long_question = Problem("What is " + " + ".join(["1"] * 200) + "?", "200")

    def check(cfg, *problems):
        prompts = [render_prompt(p.question) for p in problems]
        return length_problems(
            cfg, prompts, [f"toy.json: item {i + 1}" for i in range(len(problems))], tok, 1024
        )

    over_prompt = r"toy.json: item 2 renders to a \d+-token prompt, over rollout.max_prompt_tokens = 256"
    (problem,) = check(cpu, short, long_question)
    assert re.fullmatch(over_prompt, problem)
    long_responses = replace(cpu, rollout=replace(cpu.rollout, max_new_tokens=1000))
    over_model = (
        r"rollout.max_prompt_tokens \+ rollout.max_new_tokens = 256 \+ 1000 exceeds the model's 1024.*"
    )
    (problem,) = check(long_responses, short)
    assert re.fullmatch(over_model, problem)
    assert check(cpu, short) == []


def test_a_run_with_the_python_tool_samples_token_in_token_out_turns_and_logs_the_tools_figures(
    tiny_model_dir, vllm_engine, tmp_path
):
    # The embedded model was never taught the tool (cpu-tools' model is): its turns end on
    # ORZ's stop strings, so each trajectory is one turn, through the multi-turn path.
    cfg = _small_cpu_default(tiny_model_dir, tmp_path, max_steps=1)
    tool = ToolConfig(max_total_tokens=48)
    cfg = replace(cfg, rollout=replace(cfg.rollout, tools="python", tool=tool))
    trainer = Trainer(cfg, llm=vllm_engine)
    try:
        assert trainer.rollouts.generation.policy.input_mode == "tokens"
        assert CALL_END in trainer.rollouts.generation.policy.sampling_params.stop
        [row] = trainer.train()
    finally:
        base = load_causal_lm(str(tiny_model_dir))
        vLLMInProcessUpdater(vllm_engine).push_weights(base)  # the engine is shared by the session
    assert row["tool/turns"] == 16 and row["tool/calls"] == 0 and row["tool/ended_by_budget"] == 0
    assert row["rollout/logprob_abs_diff_max"] < 0.05, "the engine sampled what the trainer scores"
    rows = trainer.last_buffer[:]
    assert torch.equal(rows[keys.ASSISTANT_MASK], rows[keys.RESPONSE_MASK])


def test_dapos_knobs_train_on_differing_groups_with_shaped_rewards_and_resume_where_the_prompts_stopped(
    tiny_model_dir, tmp_path
):
    """Dynamic sampling, the overlong penalty and filter and clip-higher in one GRPO run: each step
    trains on groups whose env rewards differ (or says how many it lacked), on the env's reward plus
    DAPO's penalty, truncated responses out of the loss; a run stopped after step 1 and resumed
    samples step 2 from the prompts the uninterrupted run reached (a step may draw several
    rollouts' prompts, so no count of steps says where)."""
    ppo = PPOConfig(micro_batch_size=8, advantage="grpo", clip_epsilon_high=0.28)
    base = _small_cpu_default(
        tiny_model_dir, tmp_path / "whole", backend="transformers", ppo=ppo, max_steps=2
    )
    cfg = replace(
        base,
        # The embedded model's answers run 19 or 20 tokens: at 19 the longer ones are cut.
        rollout=replace(base.rollout, max_new_tokens=19, dynamic_sampling=True, max_sampling_rounds=3),
        reward=replace(base.reward, overlong_penalty=8, overlong_filter=True),
    )
    whole = _RecordingTrainer(cfg)
    history = whole.train()
    rows = whole.last_buffer[:]
    score, length, stopped = rows[keys.SCORE], rows[keys.RESPONSE_LENGTH], rows[keys.STOPPED]
    assert 0 < int(stopped.sum()) < len(stopped), "some responses were cut, some were not"
    penalty = [min(max((19 - 8 - n) / 8, -1.0), 0.0) for n in length.tolist()]
    torch.testing.assert_close(rows[keys.EPISODE_REWARD], score + torch.tensor(penalty))
    assert torch.equal(rows[keys.ASSISTANT_MASK], rows[keys.RESPONSE_MASK] & stopped[:, None])
    differ = differing_groups(score, 4)
    last = history[-1]
    assert int(differ.sum()) == 4 - last["sampling/groups_short"]
    assert last["reward/overlong_filtered_share"] == pytest.approx(1 - stopped.float().mean().item())
    assert last["reward/mean"] == pytest.approx(score.mean().item()), "the figure is the env's reward"
    drawn = [m["sampling/rounds"] * 4 for m in history]
    assert sum(drawn) > 8, "the tiny model's groups are mostly all wrong: steps sampled again"
    assert whole.rollouts.sampler.position == sum(drawn)

    cut = replace(cfg, run_dir=tmp_path / "cut", max_steps=1)
    _RecordingTrainer(cut).train()
    resumed = _RecordingTrainer(replace(cut, resume=cut.run_dir, max_steps=2))
    assert resumed.step == 1
    [row] = resumed.train()
    assert resumed.prompt_log[1] == whole.prompt_log[1]
    assert torch.equal(resumed.records[0][0], whole.records[1][0]), "the same responses"
    assert row["sampling/rounds"] == history[1]["sampling/rounds"]


class _VersionedTrainer(_RecordingTrainer):
    """Also keeps the actor's weights at the start of each step (version = updates so far) and each
    step's batch."""

    def train_step(self) -> dict[str, float]:
        self.versions[self.step] = {
            n: p.detach().clone() for n, p in self.learner.actor_model.state_dict().items()
        }
        metrics = super().train_step()
        self.batches.append(self.last_buffer[:])
        return metrics

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.versions: dict[int, dict] = {}
        self.batches: list = []


def _stale(model_dir, tmp_path, backend: str, steps: int, **fields) -> TrainConfig:
    """The small CPU default with rollout.max_staleness 1 and a learning rate that moves the actor."""
    optim = OptimConfig(actor_lr=5e-4, warmup_steps=1, critic_lr=2e-3, critic_warmup_steps=1)
    ppo = PPOConfig(micro_batch_size=8, critic_steps_per_rollout=2)
    cfg = _small_cpu_default(
        model_dir, tmp_path, backend=backend, ppo=ppo, optim=optim, max_steps=steps, **fields
    )
    return replace(cfg, rollout=replace(cfg.rollout, max_staleness=1, tis_cap=2.0))


def test_with_max_staleness_1_each_step_trains_on_the_last_versions_rollout_and_resumes_mid_flight(
    tiny_model_dir, tmp_path
):
    """transformers generate on a copy of the actor: each step after the first trains on responses
    sampled by the actor one update older, whose log-probs are the behaviour's in the loss's
    importance weight; a checkpoint taken with the next rollout in flight saves it, and a run
    resumed from it samples and trains exactly what the uninterrupted run did."""
    cfg = _stale(tiny_model_dir, tmp_path / "whole", "transformers", 3, save_interval=1)
    whole = _VersionedTrainer(cfg)
    assert whole.rollouts.generation.policy.model is not whole.learner.actor_model
    history = whole.train()
    assert [m["rollout/staleness_max"] for m in history] == [0.0, 1.0, 1.0]
    assert [m["rollout/staleness_mean"] for m in history] == [0.0, 1.0, 1.0]
    assert [int(b[keys.POLICY_VERSION].max()) for b in whole.batches] == [0, 0, 1]
    assert all(0 <= m["actor/tis_clip_fraction"] <= 1 for m in history)
    # Step 3's responses came from version 1 (the actor after one update), not the one it trains.
    batch, mask = whole.batches[2], whole.batches[2][keys.RESPONSE_MASK]
    actor = load_causal_lm(str(tiny_model_dir))
    behaviour = []
    for version in (1, 2):
        actor.load_state_dict(whole.versions[version])
        behaviour.append(_log_probs_of(actor, batch)[mask])
    engine = batch[keys.GENERATION_LOG_PROB][mask]
    torch.testing.assert_close(engine, behaviour[0], atol=2e-4, rtol=0)
    assert (engine - behaviour[1]).abs().max() > 1e-2, "the actor it trains has moved on"
    assert history[2]["rollout/logprob_abs_diff_mean"] > 1e-3, "the mismatch metric sees the staleness"

    state = torch.load(cfg.run_dir / "checkpoints" / "step_1" / "trainer_state.pt", weights_only=False)
    assert len(state["rollouts_ahead"]) == 1, "step 2's rollout was in flight: saved"
    cut = tmp_path / "cut"
    shutil.copytree(cfg.run_dir / "checkpoints" / "step_1", cut / "checkpoints" / "step_1")
    resumed = _VersionedTrainer(replace(cfg, run_dir=cut, resume=cut))
    assert resumed.step == 1
    again = resumed.train()
    for step in (1, 2):
        assert torch.equal(resumed.records[step - 1][0], whole.records[step][0]), (
            f"step {step + 1}: responses"
        )
        assert torch.equal(resumed.records[step - 1][1], whole.records[step][1]), (
            f"step {step + 1}: advantages"
        )
    assert [m["rollout/staleness_max"] for m in again] == [1.0, 1.0]


def _log_probs_of(model, batch) -> torch.Tensor:
    """``[N, R]``: each response token's log-prob under ``model``, given its prompt."""
    out = torch.zeros(batch[keys.ACTION].shape)
    with torch.no_grad():
        for i in range(batch.shape[0]):
            prompt = batch[keys.PROMPT_TOKENS][i][batch[keys.PROMPT_MASK][i]]
            response = batch[keys.ACTION][i][batch[keys.RESPONSE_MASK][i]]
            ids = torch.cat([prompt, response]).tolist()
            lp = _hf_log_probs(model, ids)[-len(response) :]
            out[i, : len(response)] = lp
    return out


def test_with_max_staleness_1_the_vllm_engine_samples_ahead_and_evaluates_the_actor_it_trains(
    tiny_model_dir, vllm_engine, tmp_path
):
    eval_file = tmp_path / "toy_eval.json"
    items = [
        {"prompt": [{"from": "user", "value": f"What is {a} + 1?"}], "final_answer": str(a + 1)}
        for a in range(2)
    ]
    eval_file.write_text(json.dumps(items))
    evaluation = EvalDuringTrainingConfig(interval=2, benchmarks=(str(eval_file),), samples=2)
    cfg = _stale(tiny_model_dir, tmp_path, "vllm", 3, eval=evaluation)
    trainer = _VersionedTrainer(cfg, llm=vllm_engine)
    try:
        history = trainer.train()
        # The evaluation after step 2 waited for step 3's rollout (sampled from version 1), then
        # synced the actor it evaluated, version 2, into the engine: the engine serves its log-probs.
        assert [m["rollout/staleness_max"] for m in history] == [0.0, 1.0, 1.0]
        assert "eval/toy_eval/avg@2" in history[1]
        ids = trainer.batches[2][keys.ACTION][0][trainer.batches[2][keys.RESPONSE_MASK][0]].tolist()
        prompt = trainer.batches[2][keys.PROMPT_TOKENS][0][trainer.batches[2][keys.PROMPT_MASK][0]].tolist()
        served = _vllm_log_probs(vllm_engine, prompt + ids)[-len(ids) :]
        actor = load_causal_lm(str(tiny_model_dir))
        actor.load_state_dict(trainer.versions[2])
        torch.testing.assert_close(served, _hf_log_probs(actor, prompt + ids)[-len(ids) :], atol=1e-4, rtol=0)
    finally:
        vLLMInProcessUpdater(vllm_engine).push_weights(load_causal_lm(str(tiny_model_dir)))
