"""Advantage estimators by name (``ppo.advantage``): ORZ's GAE with its critic, and the critic-free
baselines people weigh it against.

A step's batch holds ``G = rollout.samples_per_prompt`` responses to each prompt, adjacent
(:mod:`orz_rl.keys`); response ``i`` of a group has the reward ``R_i``. Every estimator writes
``advantage`` ``[N, R, 1]`` over the valid response tokens (0 on padding):

* ``gae`` (ORZ; :mod:`~orz_rl.advantages.gae`): GAE from the critic's values, normalised;
* ``grpo`` (:mod:`~orz_rl.advantages.grpo`): ``(R_i - mean) / std`` of its group;
* ``dr_grpo`` (:mod:`~orz_rl.advantages.dr_grpo`): ``R_i - mean`` of its group;
* ``rloo`` (:mod:`~orz_rl.advantages.rloo`): ``R_i`` minus the mean of the group's other responses;
* ``reinforce_pp`` (:mod:`~orz_rl.advantages.reinforce_pp`): the return from the token on;
* ``orz_grpo`` (:mod:`~orz_rl.advantages.orz_grpo`): ORZ's ``use_grpo`` as its code behaves.

Every estimator trains through the same :class:`~orz_rl.ppo.losses.TokenClipPPOLoss`: TorchRL's
``GRPOLoss`` has the same clipped surrogate but reads the layout of TorchRL's LLM wrappers
(``("tokens", "full")``, ``("log_probs", "full")``), not the packed actor orz-rl trains. Only
``gae`` needs a critic: with any other none is built, loaded, stepped or saved.

A new estimator is an :class:`~orz_rl.advantages.estimator.AdvantageEstimator` in a file of its own
and one entry in :data:`ESTIMATORS` (or, from outside the package, :func:`register`).
"""

from __future__ import annotations

from tensordict import TensorDict
from torchrl.objectives.value import GAE

from orz_rl.advantages.dr_grpo import DR_GRPO_ESTIMATOR
from orz_rl.advantages.estimator import AdvantageEstimator, AdvantageInputs
from orz_rl.advantages.gae import GAE_ESTIMATOR
from orz_rl.advantages.grpo import GRPO_ESTIMATOR
from orz_rl.advantages.kl import KLEstimator
from orz_rl.advantages.orz_grpo import ORZ_GRPO_ESTIMATOR
from orz_rl.advantages.reinforce_pp import REINFORCE_PP_ESTIMATOR
from orz_rl.advantages.rloo import RLOO_ESTIMATOR

#: Every estimator by name, in the order of the list above.
ESTIMATORS: dict[str, AdvantageEstimator] = {
    e.name: e
    for e in (
        GAE_ESTIMATOR,
        GRPO_ESTIMATOR,
        DR_GRPO_ESTIMATOR,
        RLOO_ESTIMATOR,
        REINFORCE_PP_ESTIMATOR,
        ORZ_GRPO_ESTIMATOR,
    )
}


def register(estimator: AdvantageEstimator) -> None:
    """Make ``estimator`` selectable as ``ppo.advantage`` (an error if its name is taken)."""
    if estimator.name in ESTIMATORS:
        raise ValueError(f"an advantage estimator named {estimator.name!r} is already registered")
    ESTIMATORS[estimator.name] = estimator


def get_estimator(name: str) -> AdvantageEstimator:
    """The estimator ``ppo.advantage = name`` selects."""
    try:
        return ESTIMATORS[name]
    except KeyError:
        raise ValueError(
            f"unknown advantage estimator {name!r}; expected one of {', '.join(ESTIMATORS)}"
        ) from None


def estimate_advantages(
    batch: TensorDict,
    estimator: str,
    gae: GAE,
    *,
    group_size: int,
    normalize: bool = True,
    reward_clip: float = 10.0,
    kl_penalty: tuple[float, KLEstimator] | None = None,
) -> TensorDict:
    """Fill ``advantage`` (and, for ``gae``, the critic's ``value_target``) of ``batch`` by the
    estimator named ``estimator``; ``gae`` is the run's TorchRL GAE.

    ``kl_penalty = (coef, estimator)`` subtracts the KL to the reference from every token's reward
    first (:mod:`orz_rl.advantages.kl`; the estimators with token rewards only)."""
    chosen = get_estimator(estimator)
    if kl_penalty is not None and not chosen.token_rewards:
        raise ValueError(f"{estimator} scores whole responses: a KL penalty has no token rewards to go into")
    chosen.advantages(batch, AdvantageInputs(gae, group_size, normalize, reward_clip, kl_penalty))
    return batch
