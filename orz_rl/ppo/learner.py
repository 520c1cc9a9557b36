"""The learner: actor and critic as ORZ sets them up, with their losses, optimisers and GAE.

Two separate copies of the base model (no shared weights), the critic with ORZ's value head
(none where the advantage estimator is critic-free, :mod:`orz_rl.advantages.registry`);
each forward pass packs sequences into rows of ``ppo.pack_tokens``; both sharded over the
training ranks (FSDP2; a no-op in one process); PPO's clipped surrogate (``TokenClipPPOLoss``) for
the actor and ORZ's clipped value loss for the critic; AdamW with a linear warm-up for each.
"""

from __future__ import annotations

import torch
from tensordict import TensorDict

from orz_rl import keys
from orz_rl.advantages.registry import get_estimator
from orz_rl.advantages.token_gae import make_gae
from orz_rl.config import PPOConfig, TrainConfig
from orz_rl.models.loading import load_causal_lm
from orz_rl.ppo.actor import make_training_actor
from orz_rl.ppo.critic import Critic, make_value_operator
from orz_rl.ppo.forward import enable_activation_checkpointing
from orz_rl.ppo.losses import ClippedValueLoss, TokenClipPPOLoss
from orz_rl.ppo.update import forward_all, make_optimizer
from orz_rl.runtime.checkpoint import load_optimizer_state, optimizer_state
from orz_rl.runtime.distributed import Distributed
from orz_rl.runtime.timing import Timer


class PPOLearner:
    """Actor and critic of one run, loaded from ``actor_path`` and ``critic_path`` (the base model,
    or a checkpoint's), sharded over ``dist``'s ranks.

    Attributes:
        actor_model: the actor, a Hugging Face causal LM (what generation and checkpoints use).
        critic: the :class:`~orz_rl.ppo.critic.Critic` (``None`` without one, as every other
            critic attribute then).
        reference, reference_actor: the frozen reference model and its TorchRL actor, for a KL
            term (``None`` without one).
        actor: the actor as TorchRL's losses read it (a distribution over ``action``).
        value_operator: the critic as a TorchRL value module writing ``state_value``.
        policy_loss, value_loss: the two losses.
        actor_optim, actor_sched, critic_optim, critic_sched: AdamW and ORZ's warm-up schedule.
        gae: TorchRL's GAE (the exact closed form at gamma = lambda = 1).
        pack_tokens: token budget of a packed row in the forward passes (0: padded batches).
    """

    def __init__(
        self, cfg: TrainConfig, actor_path: str, critic_path: str, dist: Distributed, reference_path: str = ""
    ) -> None:
        p, o, r = cfg.ppo, cfg.optim, cfg.rollout
        self.micro_batch_size = p.micro_batch_size
        dtype = getattr(torch, cfg.model.dtype)
        self.dist = dist
        self.actor_model = load_causal_lm(actor_path, dtype=dtype).eval()
        self.gae = make_gae(p.gamma, p.lmbda)
        if p.activation_checkpointing:
            enable_activation_checkpointing(self.actor_model)
        self.pack_tokens = r.seq_len if p.pack_tokens < 0 else p.pack_tokens
        self.actor = make_training_actor(
            self.actor_model, self.pack_tokens, p.logit_chunk_tokens, with_entropy=p.entropy_coef > 0
        )
        # The module FSDP wraps is the one the loss calls (ResponseLogProbs): its forward gathers
        # the embeddings and the head around the decoder layers' own gathers.
        dist.shard(self.actor[0].module, self.actor_model.get_decoder().layers)
        clip = p.clip_epsilon if p.clip_epsilon_high is None else (p.clip_epsilon, p.clip_epsilon_high)
        self.policy_loss = TokenClipPPOLoss(
            self.actor,
            clip_epsilon=clip,
            aggregation=p.aggregation,
            on_policy_without_old_log_probs=self.old_log_probs_from_update(p),
            norm_tokens=r.max_new_tokens,
            tis_cap=r.tis_cap,
            entropy_coef=p.entropy_coef,
            kl_coef=p.kl_coef if p.kl_in == "loss" else 0.0,
            kl_estimator=p.kl_estimator,
        )
        self.actor_optim, self.actor_sched = make_optimizer(self.actor_model, o.actor_lr, o, o.warmup_steps)
        self.critic = self.value_operator = self.value_loss = self.critic_optim = self.critic_sched = None
        if get_estimator(p.advantage).needs_critic:
            self._build_critic(cfg, critic_path, dtype)
        self.reference = self.reference_actor = None
        if p.uses_reference:
            # Frozen: no gradients, no optimiser; sharded as the actor is.
            self.reference = load_causal_lm(reference_path or cfg.model.path, dtype=dtype).eval()
            self.reference.requires_grad_(False)
            self.reference_actor = make_training_actor(self.reference, self.pack_tokens, p.logit_chunk_tokens)
            dist.shard(self.reference_actor[0].module, self.reference.get_decoder().layers)

    def _build_critic(self, cfg: TrainConfig, path: str, dtype: torch.dtype) -> None:
        p, o, dist = cfg.ppo, cfg.optim, self.dist
        # Separate copy of the base model: actor and critic share no weights (ORZ).
        self.critic = Critic.from_pretrained(path, dtype=dtype).eval()
        if p.activation_checkpointing:
            enable_activation_checkpointing(self.critic.backbone)
        self.critic.pack_tokens = self.pack_tokens
        dist.shard(self.critic, self.critic.backbone.layers)
        self.value_operator = make_value_operator(self.critic)
        self.value_loss = ClippedValueLoss(
            self.value_operator,
            clip_value=p.value_clip,
            coeff=p.value_loss_coeff,
            aggregation=p.aggregation,
            norm_tokens=cfg.rollout.max_new_tokens,
        )
        self.critic_optim, self.critic_sched = make_optimizer(
            self.critic, o.critic_lr, o, o.critic_warmup_steps
        )

    @staticmethod
    def old_log_probs_from_update(ppo: PPOConfig) -> bool:
        """Whether the policy loss takes PPO's old log-probs from its own pass (one policy step per
        rollout, ``ppo.old_log_probs_from_update``), so that no pass before the update computes them
        (a KL penalty on the rewards needs them before the update)."""
        penalty = ppo.uses_reference and ppo.kl_in == "reward"
        return ppo.old_log_probs_from_update and ppo.policy_steps_per_rollout == 1 and not penalty

    def score(self, batch: TensorDict, timer: Timer, clock: Timer) -> None:
        """What the update needs from before it, each rank its slice and every rank all of it: PPO's
        old log-probs (unless the loss takes them from its own pass), the reference's log-probs
        (with a KL term) and the critic's values V_old (with a critic). ``clock`` times the passes."""
        args = (batch, self.micro_batch_size, self.dist, clock)

        def log_probs(actor):
            return lambda m: actor.get_dist(m).log_prob(m.get(keys.ACTION))

        if not self.policy_loss.on_policy_without_old_log_probs:
            with timer("old_log_probs"):
                batch.set(keys.ACTION_LOG_PROB, forward_all(log_probs(self.actor), *args))
        if self.reference is not None:
            with timer("reference_log_probs"):
                batch.set(keys.REF_LOG_PROB, forward_all(log_probs(self.reference_actor), *args))
        if self.critic is not None:
            with timer("critic_values"):
                value = self.value_operator
                batch.set(
                    keys.STATE_VALUE,
                    forward_all(lambda m: value(m.clone(False)).get(keys.STATE_VALUE), *args),
                )

    def state_dict(self) -> dict:
        """Optimiser and scheduler states (whole, keyed by parameter name, when sharded: a collective)."""
        sharded = self.dist.active
        state = {
            "actor_optim": optimizer_state(self.actor_model, self.actor_optim, sharded),
            "actor_sched": self.actor_sched.state_dict(),
        }
        if self.critic is not None:
            state["critic_optim"] = optimizer_state(self.critic, self.critic_optim, sharded)
            state["critic_sched"] = self.critic_sched.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Load what :meth:`state_dict` saved, on any number of ranks."""
        sharded = self.dist.active
        load_optimizer_state(self.actor_model, self.actor_optim, state["actor_optim"], sharded)
        self.actor_sched.load_state_dict(state["actor_sched"])
        if self.critic is not None:
            load_optimizer_state(self.critic, self.critic_optim, state["critic_optim"], sharded)
            self.critic_sched.load_state_dict(state["critic_sched"])
