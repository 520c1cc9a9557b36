"""``dr_grpo`` (Dr. GRPO, arXiv 2503.20783): each reward minus its group's mean. Its second change,
a constant length normaliser instead of each response's own length, is the loss aggregation
``seq-mean-token-sum-norm`` (:func:`orz_rl.ppo.losses.aggregate_token_loss`), which it declares."""

from __future__ import annotations

from dataclasses import dataclass

from tensordict import TensorDict

from orz_rl.advantages.estimator import (
    AdvantageEstimator,
    AdvantageInputs,
    clipped_rewards,
    set_response_scores,
)
from orz_rl.advantages.groups import mean_centred


@dataclass(frozen=True)
class DrGRPO(AdvantageEstimator):
    """Group-mean-centred response rewards on every token of the response."""

    def advantages(self, batch: TensorDict, inputs: AdvantageInputs) -> None:
        set_response_scores(batch, mean_centred(clipped_rewards(batch, inputs), inputs.group_size))


DR_GRPO_ESTIMATOR = DrGRPO(
    "dr_grpo",
    "Dr. GRPO: the group's mean, with --ppo.aggregation seq-mean-token-sum-norm",
    min_group_size=2,
    aggregation="seq-mean-token-sum-norm",
)
