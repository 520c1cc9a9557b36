"""``reinforce_pp`` (REINFORCE++, arXiv 2501.03262): the return from each token on (``ppo.gamma``,
lambda 1), always normalised over the batch, which is its point."""

from __future__ import annotations

from dataclasses import dataclass

from tensordict import TensorDict

from orz_rl.advantages.estimator import AdvantageEstimator, AdvantageInputs, clipped_rewards, valueless_gae


@dataclass(frozen=True)
class ReinforcePP(AdvantageEstimator):
    """The discounted return of the token rewards, with no values, batch-normalised."""

    def advantages(self, batch: TensorDict, inputs: AdvantageInputs) -> None:
        valueless_gae(batch, clipped_rewards(batch, inputs), inputs, lmbda=1.0, normalize=True)


REINFORCE_PP_ESTIMATOR = ReinforcePP(
    "reinforce_pp", "REINFORCE++: the batch-normalised return", token_rewards=True
)
