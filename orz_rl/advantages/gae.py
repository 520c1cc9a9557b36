"""``gae``, ORZ's estimator (Schulman et al. 2016): GAE from the critic's values, gamma = lambda = 1
in ORZ, normalised over the batch (``ppo.normalize_advantages``)."""

from __future__ import annotations

from dataclasses import dataclass

from tensordict import TensorDict

from orz_rl.advantages.estimator import AdvantageEstimator, AdvantageInputs
from orz_rl.advantages.kl import penalise_token_rewards
from orz_rl.advantages.token_gae import gae_advantages, set_next_values, set_token_rewards


@dataclass(frozen=True)
class CriticGAE(AdvantageEstimator):
    """GAE over the token rewards, from the critic's ``state_value``; writes ``value_target`` too."""

    def advantages(self, batch: TensorDict, inputs: AdvantageInputs) -> None:
        set_token_rewards(batch, inputs.reward_clip)
        if inputs.kl_penalty is not None:
            penalise_token_rewards(batch, *inputs.kl_penalty)
        set_next_values(batch)
        gae_advantages(batch, inputs.gae, normalize=inputs.normalize)


GAE_ESTIMATOR = CriticGAE(
    "gae", "ORZ's: GAE from a learned critic's values", needs_critic=True, token_rewards=True
)
