"""Advantages: from a step's rewards (and the critic's values) to per-token advantages.

* :mod:`~orz_rl.advantages.token_gae`: the batch as per-token steps and TorchRL's GAE over them
  (ORZ's gamma = lambda = 1 in closed form), batch normalisation;
* :mod:`~orz_rl.advantages.kl`: the KL to a reference model, as a reward penalty or a loss term;
* :mod:`~orz_rl.advantages.estimator` and :mod:`~orz_rl.advantages.registry`: the estimators of
  ``ppo.advantage``, one file each, and what each needs.
"""
