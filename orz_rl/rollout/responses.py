"""One rollout of a single-turn env through the training's collector, read back per response.

``orz-rl eval`` samples its benchmarks this way: the same :class:`SingleTurnCollector` as a
training step (one reset, one policy call, one env step), its ragged output (no training batch)
read into one :class:`Response` per env element.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tensordict import TensorDictBase
from torchrl.envs import EnvBase

from orz_rl import keys
from orz_rl.problems.prompts import as_strings
from orz_rl.rollout.collector import SingleTurnCollector
from orz_rl.rollout.multi_turn import MultiTurnCollector
from orz_rl.rollout.training_batch import leaves, stop_verdicts


@dataclass(frozen=True)
class Response:
    """One sampled response and what the env made of it."""

    prompt_id: int
    """The index of its prompt among the env's problems (``prompt_id``)."""
    reward: float
    """The env's reward."""
    tokens: int
    """Its length in tokens."""
    finish_reason: str
    """``stop`` or ``length`` (:func:`~orz_rl.rollout.training_batch.stop_verdicts`)."""
    prompt: str
    """The prompt as rendered."""
    text: str
    """The response."""


class NoPromptIdError(ValueError):
    """An env that writes no ``prompt_id``, so its responses cannot be told apart by prompt."""


def read_responses(td: TensorDictBase) -> list[Response]:
    """The responses of a stepped rollout (a collector's ragged output, flat)."""
    if keys.PROMPT_ID not in td.keys():
        raise NoPromptIdError(f"the env writes no {keys.PROMPT_ID!r}")
    n = td.shape[0]
    rows = zip(
        td.get(keys.PROMPT_ID).reshape(n).tolist(),
        td.get(("next", "reward")).reshape(n).tolist(),
        [t.numel() for t in leaves(td.get(("tokens", "response"), as_list=True))],
        stop_verdicts(td, n)[1].tolist(),
        as_strings(td.get(("text", "prompt"))),
        as_strings(td.get(("text", "response"))),
        strict=True,
    )
    return [Response(*row) for row in rows]


def sample_responses(
    env: EnvBase, policy: Callable[[TensorDictBase], TensorDictBase], multi_turn: bool = False
) -> list[Response]:
    """One rollout of ``env`` (every element once) by ``policy``, through the collector (the
    :class:`~orz_rl.rollout.multi_turn.MultiTurnCollector` for a ``multi_turn`` env: one response
    is then a whole trajectory)."""
    cls = MultiTurnCollector if multi_turn else SingleTurnCollector
    collector = cls(env, policy=policy, total_steps=1, track_policy_version=False)
    try:
        (td,) = list(collector)
    finally:
        collector.shutdown()
    return read_responses(td.reshape(-1))
