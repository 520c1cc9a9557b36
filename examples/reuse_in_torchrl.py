"""orz-rl's vLLM policy and collector in a plain TorchRL script: PPO with a critic on TorchRL's
own ``CountdownEnv``, every other part stock TorchRL.

    python examples/reuse_in_torchrl.py --model artifacts/tiny-qwen2 --log-dir runs/reuse

The pipeline, one line each below: env (TorchRL's) -> orz-rl's policy and collector -> stock
``ReplayBuffer`` of TorchRL's ragged LLM output -> ``ToTrainingBatch`` (dense, padded rows) ->
``to_token_steps`` (critic values, token rewards, dones, mask) -> stock ``GAE`` -> stock
``ClipPPOLoss`` -> Adam -> weight sync into the engine -> stock ``CSVLogger``.
``docs/rollouts.md`` walks through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import torch
import tyro
from torchrl.data import LazyStackStorage, ReplayBuffer
from torchrl.data.replay_buffers.samplers import SamplerWithoutReplacement
from torchrl.envs.llm.datasets.countdown import CountdownEnv
from torchrl.objectives import ClipPPOLoss
from torchrl.objectives.value import GAE
from torchrl.record.loggers.csv import CSVLogger

from orz_rl.advantages.token_gae import to_token_steps
from orz_rl.config import AT_LEAST_1, POSITIVE, ConfigError, bound_problems, raise_if_any
from orz_rl.models.loading import load_causal_lm, load_tokenizer
from orz_rl.ppo.actor import make_training_actor
from orz_rl.ppo.critic import Critic, make_value_operator
from orz_rl.rollout.collector import make_collector
from orz_rl.rollout.engines import make_vllm_engine
from orz_rl.rollout.policies import Sampling, make_vllm_policy
from orz_rl.rollout.training_batch import ToTrainingBatch
from orz_rl.rollout.weight_sync import vLLMInProcessUpdater


@dataclass(frozen=True)
class ReuseExample:
    """PPO with a critic on TorchRL's CountdownEnv through orz-rl's collector."""

    model: Path = Path("artifacts/tiny-qwen2")
    """A Hugging Face causal LM folder, actor and critic alike (``orz-rl build-model`` writes the
    tiny one)."""
    log_dir: Path = Path("runs/reuse-in-torchrl")
    """Where TorchRL's CSVLogger writes its scalars."""
    envs: Annotated[int, AT_LEAST_1] = 4
    """Countdown problems per rollout."""
    rollouts: Annotated[int, AT_LEAST_1] = 3
    """Rollouts collected (each followed by one PPO pass over the buffer)."""
    max_new_tokens: Annotated[int, AT_LEAST_1] = 24
    """Response length limit."""
    mini_batch: Annotated[int, AT_LEAST_1] = 4
    """Responses per PPO step, sampled from the buffer without replacement."""
    lr: Annotated[float, POSITIVE] = 1e-5
    """Adam's learning rate, actor and critic."""
    seed: int = 0
    """Seed of torch, the engine and the Countdown problems."""


def run(cfg: ReuseExample, llm=None) -> tuple[dict[str, float], ReplayBuffer]:
    """Train for ``cfg.rollouts`` rollouts; ``llm``: an in-process vLLM engine to sample from (else
    one is made). Returns the last PPO step's scalars and the buffer. A field out of its range is
    a ``ConfigError`` naming it, before anything loads."""
    raise_if_any(bound_problems(cfg))
    torch.manual_seed(cfg.seed)
    tokenizer = load_tokenizer(str(cfg.model))
    actor_model = load_causal_lm(str(cfg.model))
    value = make_value_operator(Critic.from_pretrained(cfg.model))
    llm = llm or make_vllm_engine(str(cfg.model), dtype="float32", seed=cfg.seed, max_model_len=512)

    env = CountdownEnv(
        tokenizer=tokenizer, input_mode="text", num_envs=cfg.envs, batch_size_dl=cfg.envs, seed=cfg.seed
    )
    buffer = ReplayBuffer(
        storage=LazyStackStorage(cfg.rollouts * cfg.envs),  # rows of any width: TorchRL's ragged output
        sampler=SamplerWithoutReplacement(drop_last=False),
        batch_size=cfg.mini_batch,
    )
    collector = make_collector(
        env,
        make_vllm_policy(llm, tokenizer, Sampling(max_new_tokens=cfg.max_new_tokens)),
        tokenizer.pad_token_id,
        total_steps=cfg.rollouts,
        postproc=None,  # keep TorchRL's ragged output; rows are made dense after sampling
        replay_buffer=buffer,
        weight_updater=vLLMInProcessUpdater(llm),
    )
    densify = ToTrainingBatch(tokenizer.pad_token_id)
    gae = GAE(gamma=1.0, lmbda=1.0, value_network=None)  # ORZ's gamma = lambda = 1
    loss = ClipPPOLoss(make_training_actor(actor_model, with_entropy=True), critic_network=value)
    optim = torch.optim.Adam(loss.parameters(), lr=cfg.lr)
    logger = CSVLogger(exp_name="reuse", log_dir=str(cfg.log_dir))

    step, scalars = 0, {}
    for _ in collector:  # each rollout went into the buffer: the collector yields None
        for raw in buffer:  # one pass over everything collected so far
            batch = densify(raw)
            steps = to_token_steps(batch, value)
            gae(steps)
            batch.update(steps.select("advantage", "value_target"))
            # The old policy's log-probs: the engine's own, which sampled these tokens.
            batch.set("action_log_prob", batch.get("generation_log_prob"))
            losses = loss(batch)
            total = losses["loss_objective"] + losses["loss_critic"] + losses["loss_entropy"]
            optim.zero_grad()
            total.backward()
            optim.step()
            scalars = {k: float(v.detach()) for k, v in losses.items() if v.numel() == 1}
            scalars["reward_mean"] = float(batch.get("episode_reward").mean())
            for name, v in scalars.items():
                logger.log_scalar(name, v, step=step)
            step += 1
        collector.update_policy_weights_(actor_model)  # the engine samples from the new weights
    return scalars, buffer


if __name__ == "__main__":
    try:
        print(run(tyro.cli(ReuseExample))[0])
    except ConfigError as e:
        raise SystemExit(f"examples/reuse_in_torchrl.py: {e}") from None
