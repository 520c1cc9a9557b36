"""``orz_grpo``: ORZ's ``use_grpo`` switch as its code behaves.

It centres each score by its group's mean and means to divide by the std, but ``if std :=
np.std(...) > 0`` binds the comparison, so it divides by ``True``; the centred scores then go
through ORZ's GAE with no critic (values 0) and its batch normalisation. With gamma = lambda = 1
every token of a response gets its centred score."""

from __future__ import annotations

from dataclasses import dataclass

from tensordict import TensorDict

from orz_rl.advantages.estimator import AdvantageEstimator, AdvantageInputs, clipped_rewards, valueless_gae
from orz_rl.advantages.groups import mean_centred


@dataclass(frozen=True)
class ORZGRPO(AdvantageEstimator):
    """Group-mean-centred rewards through GAE without values, normalised as the run says."""

    def advantages(self, batch: TensorDict, inputs: AdvantageInputs) -> None:
        reward = mean_centred(clipped_rewards(batch, inputs), inputs.group_size)
        valueless_gae(batch, reward, inputs, lmbda=None, normalize=inputs.normalize)


ORZ_GRPO_ESTIMATOR = ORZGRPO(
    "orz_grpo",
    "ORZ's own GRPO switch as its code behaves: the group's mean, then batch normalisation",
    min_group_size=2,
    token_rewards=True,
)
