"""Rollouts: TorchRL's ``LLMCollector`` over any single-turn text env.

:class:`SingleTurnCollector` is an :class:`~torchrl.collectors.llm.LLMCollector` whose
rollout is one reset, one policy call and one env step: one response per env element.
It serves any TorchRL env that keeps this contract (orz-rl's
:class:`~orz_rl.envs.rule_reward.RuleRewardEnv` is one, TorchRL's own ``CountdownEnv`` or
``GSM8KEnv`` in ``"text"`` mode are others):

====================================  ========  ==============================================
key                                   written   meaning
====================================  ========  ==============================================
``("text", "prompt")``                reset     the prompt of each env element (required)
``("next", "reward")``                step      the response's reward, any trailing shape (required)
``("next", "done")``                  step      True everywhere: every episode ends at its first
                                                step (required; the collector checks it)
``("next", "stopped")``               step      the response ended on a stop string or EOS
                                                (optional: else from the policy's
                                                ``finish_reason``, else True)
``"prompt_id"``                       reset     the prompt's index in its dataset (optional:
                                                -1; ``orz-rl eval`` needs it)
``"answer"``                          reset     the ground truth, as text (optional)
====================================  ========  ==============================================

The policy (:mod:`orz_rl.rollout.policies`) writes ``("text", "response")``,
``("tokens", "prompt")``, ``("tokens", "response")``, ``("log_probs", "response")`` and,
with vLLM, ``finish_reason``.

The collector adds ``policy_version`` (top level): the version of the weights that sampled each
response. It yields (or writes into its replay buffer) what its ``postproc`` makes of each
rollout. :func:`make_collector` sets orz-rl's adapter to the dense training batch of
:mod:`orz_rl.keys` (:class:`~orz_rl.rollout.training_batch.ToTrainingBatch`); pass
``postproc=None`` for TorchRL's own ragged output. Outside orz-rl's trainer it is a TorchRL
collector like any other (the README has a script)::

    collector = make_collector(env, policy, tokenizer.pad_token_id, replay_buffer=buffer,
                               weight_updater=vLLMInProcessUpdater(llm))
    for _ in collector:   # each iteration writes one rollout into the buffer
        ...               # train, then collector.update_policy_weights_(model)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Literal

import torch
from tensordict import TensorDictBase
from torchrl.collectors import WeightUpdaterBase
from torchrl.collectors.llm import LLMCollector
from torchrl.data import ReplayBuffer
from torchrl.envs import EnvBase
from torchrl.envs.llm.transforms import PolicyVersion

from orz_rl import keys
from orz_rl.rollout.training_batch import ToTrainingBatch

#: What a collector makes of each rollout (``None``: TorchRL's ragged output as it is).
Postproc = Callable[[TensorDictBase], TensorDictBase] | None


class SingleTurnCollector(LLMCollector):
    """TorchRL's ``LLMCollector`` for envs whose episodes end at their first step.

    ``LLMCollector``'s rollout is built for dialogues: it steps with ``step_and_maybe_reset``,
    clones every step's output (the next turn writes into the same carrier), and tags policy
    versions through a ``TransformedEnv`` whose inverse pass clones the whole input. A
    single-turn batch needs none of it (``docs/performance.md`` has what it cost): its
    :attr:`rollout` is :meth:`single_turn_rollout`, a fresh reset, one policy call and one env
    step, and nothing aliases the previous batch, so nothing is cloned.

    Everything else is ``LLMCollector``'s: iteration, ``postproc``, the replay buffer,
    ``update_policy_weights_`` and its weight updater, ``policy_version`` and
    ``increment_version`` (the tracker is TorchRL's ``PolicyVersion``, kept by the collector
    instead of appended to the env). Each batch has the env's batch size, flattened; with
    version tracking it carries ``policy_version`` at its top level (where TorchRL's
    ``PolicyVersion`` documents it), the version whose weights sampled its responses.

    Raises:
        ValueError: from an iteration whose env step left an episode running.
    """

    def __init__(
        self,
        env: EnvBase,
        *,
        policy: Callable[[TensorDictBase], TensorDictBase],
        total_steps: int = -1,
        postproc: Postproc = None,
        replay_buffer: ReplayBuffer | None = None,
        weight_updater: WeightUpdaterBase | None = None,
        track_policy_version: bool = True,
    ) -> None:
        size = env.batch_size.numel()
        with warnings.catch_warnings():
            # Two notices about machinery a single-turn env does not use: the InitTracker that
            # multi-turn policies need (LLMCollector does not pass on the flag that opts out),
            # and weight-sync schemes (LLMCollector takes a WeightUpdaterBase only).
            warnings.filterwarnings("ignore", "The env passed to .* is missing transforms", FutureWarning)
            warnings.filterwarnings("ignore", "Using WeightUpdaterBase is deprecated", DeprecationWarning)
            super().__init__(
                env,
                policy=policy,
                dialog_turns_per_batch=size,
                total_dialog_turns=-1 if total_steps < 0 else total_steps * size,
                postproc=postproc,
                replay_buffer=replay_buffer,
                weight_updater=weight_updater,
            )
        self.policy_version_tracker = PolicyVersion() if track_policy_version else None
        # TorchRL's iterator clones what it yields unless the collector hands out one tensordict
        # it updates in place; each batch here is built fresh, so that clone would only copy it.
        self.return_same_td = replay_buffer is None

    @property
    def rollout(self) -> Callable[[], TensorDictBase]:
        """What each iteration calls for its batch: :meth:`single_turn_rollout`."""
        return self.single_turn_rollout

    def single_turn_rollout(self) -> TensorDictBase:
        """One batch: a reset, one policy call and one env step, every episode done."""
        td = self.env.step(self.policy(self.env.reset()))
        if not bool(td.get(("next", "done")).all()):
            raise ValueError(
                "SingleTurnCollector needs an env that ends every episode at its first step; "
                f"{type(self.env).__name__} left some running (use LLMCollector for dialogues)"
            )
        if self.policy_version_tracker is not None:
            # Set after the policy call: the version whose weights sampled the responses.
            version = torch.full(td.batch_size, self.policy_version, dtype=torch.int64)
            td.set(keys.POLICY_VERSION, version)
        # Reshaping lazily stacked entries is costly: only a many-dimensional env pays for it.
        return td if td.batch_dims == 1 else td.reshape(-1)


def make_collector(
    env: EnvBase,
    policy: Callable[[TensorDictBase], TensorDictBase],
    pad_token_id: int,
    total_steps: int = -1,
    *,
    postproc: Postproc | Literal["training_batch"] = "training_batch",
    replay_buffer: ReplayBuffer | None = None,
    weight_updater: WeightUpdaterBase | None = None,
    track_policy_version: bool = True,
    collector_class: type[SingleTurnCollector] = SingleTurnCollector,
) -> SingleTurnCollector:
    """A collector producing one batch (every env element once) per iteration.

    Args:
        env: a single-turn text env keeping the contract above.
        policy: a generation policy of :mod:`orz_rl.rollout.policies`.
        pad_token_id: the id that pads prompts (left) and responses (right).
        total_steps: rollouts to produce (-1: no end).
        postproc: what each rollout becomes: ``"training_batch"`` (the dense batch of
            :mod:`orz_rl.keys`), ``None`` (TorchRL's ragged output), or a callable.
        replay_buffer: when given, each rollout is written into it and the
            iterator yields ``None``; otherwise the iterator yields the batch.
        weight_updater: what ``collector.update_policy_weights_(model)`` calls
            (:class:`orz_rl.rollout.weight_sync.vLLMInProcessUpdater` for vLLM).
        track_policy_version: tag every response with ``policy_version`` (top level),
            incremented by each weight update.
        collector_class: :class:`~orz_rl.rollout.multi_turn.MultiTurnCollector` for an env whose
            episodes take several turns.
    """
    return collector_class(
        env,
        policy=policy,
        total_steps=total_steps,
        postproc=ToTrainingBatch(pad_token_id) if postproc == "training_batch" else postproc,
        replay_buffer=replay_buffer,
        weight_updater=weight_updater,
        track_policy_version=track_policy_version,
    )
