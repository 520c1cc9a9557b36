"""The ORZ training loop (:class:`~orz_rl.trainer.loop.Trainer`): the learner on every rank, the
rollout side (:class:`~orz_rl.trainer.rollouts.RolloutSide`) on rank 0."""

from orz_rl.trainer.loop import Trainer

__all__ = ["Trainer"]
