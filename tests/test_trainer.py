"""The training loop end to end on the embedded model (a few steps)."""

from __future__ import annotations

import json
from dataclasses import replace

import torch

from orz_rl.config import PPOConfig, RolloutConfig
from orz_rl.critic import Critic
from orz_rl.modeling import load_causal_lm
from orz_rl.recipes import RECIPES
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
]


def test_short_run_logs_documented_metrics_and_saves_hf_checkpoints(tiny_model_dir, tmp_path):
    _, cpu = RECIPES["cpu-default"]
    cfg = replace(
        cpu,
        model=replace(cpu.model, path=str(tiny_model_dir), build_tiny_if_missing=False),
        data=replace(cpu.data, train_file=str(tmp_path / "toy.json")),
        rollout=RolloutConfig(
            prompts_per_step=4, samples_per_prompt=4, max_new_tokens=24, max_prompt_tokens=64
        ),
        ppo=PPOConfig(micro_batch_size=8, critic_steps_per_rollout=3),
        run_dir=tmp_path / "run",
        max_steps=2,
        progress=False,
    )
    trainer = Trainer(cfg)
    before = {n: p.detach().clone() for n, p in trainer.actor_model.named_parameters()}
    critic_before = {n: p.detach().clone() for n, p in trainer.critic.named_parameters()}
    history = trainer.train()
    assert len(history) == 2
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    for key in DOCUMENTED:
        assert key in rows[0], key
    assert 0.0 <= rows[0]["reward/mean"] <= 1.0
    moved = [n for n, p in trainer.actor_model.named_parameters() if not torch.equal(p, before[n])]
    assert moved, "the actor took no step"
    assert any(not torch.equal(p, critic_before[n]) for n, p in trainer.critic.named_parameters())
    final = tmp_path / "run" / "checkpoints" / "final"
    actor = load_causal_lm(str(final / "actor"))
    for n, p in actor.named_parameters():
        torch.testing.assert_close(p, dict(trainer.actor_model.named_parameters())[n])
    critic = Critic.from_pretrained(final / "critic")
    torch.testing.assert_close(critic.value_head.weight, trainer.critic.value_head.weight)
