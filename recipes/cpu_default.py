"""The CPU default: the embedded tiny Qwen2 learns single-digit addition by ORZ's PPO.

Same algorithm as ORZ (separate critic, GAE gamma = lambda = 1, no KL, one actor
step and 12 critic steps per rollout, ORZ's clipping and aggregation); only the
scale differs, for a 2-core machine:

* model: the tiny Qwen2 built by ``orz_rl.tiny_model`` (no download), fp32;
* data: the 100 single-digit additions, so answers vary (0..18);
* rollout: 32 prompts x 8 samples, at most 32 new tokens (a well-formed
  answer is ~20);
* learning rates 5e-4 (actor, 40-step warm-up) and 2e-3 (critic, 5-step
  warm-up) instead of 1e-6 / 5e-6 over 50: a 0.3M-parameter model needs far
  larger steps than a 7B base model. The critic warms up fast and the actor
  slowly because ORZ's value-head init (U(-sqrt 5, sqrt 5)) makes the first
  values noise of magnitude ~10; at full actor LR that noise, normalised into
  the advantages, wrecks the answer format within five steps (measured).
"""

from pathlib import Path

from orz_rl.config import DataConfig, ModelConfig, OptimConfig, PPOConfig, RolloutConfig, TrainConfig

CPU_DEFAULT = TrainConfig(
    model=ModelConfig(path="artifacts/tiny-qwen2", build_tiny_if_missing=True, dtype="float32"),
    data=DataConfig(train_file="artifacts/toy_addition.json", generate_toy_task=True),
    rollout=RolloutConfig(
        prompts_per_step=32, samples_per_prompt=8, max_new_tokens=32, max_prompt_tokens=256
    ),
    ppo=PPOConfig(micro_batch_size=64),
    optim=OptimConfig(actor_lr=5e-4, critic_lr=2e-3, warmup_steps=40, critic_warmup_steps=5),
    run_dir=Path("runs/cpu-default"),
    num_episodes=80,
    max_minutes=12.0,
    save_interval=0,
)
