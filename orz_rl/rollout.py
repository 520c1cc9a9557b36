"""Rollouts: TorchRL's LLMCollector over a single-turn text env, densified for training.

:func:`make_collector` returns a :class:`SingleTurnCollector`, an
:class:`~torchrl.collectors.llm.LLMCollector` whose rollout is one reset, one policy
call and one env step (one response per env element), and whose ``postproc``
turns the ragged output into the dense batch documented in :mod:`orz_rl.keys`.
It works with any orz-rl text env and either generation backend of
:mod:`orz_rl.generation`; outside orz-rl's trainer it is a TorchRL collector like
any other (``README.md`` has a script)::

    llm = make_vllm_engine("artifacts/tiny-qwen2", dtype="float32")
    policy = make_vllm_policy(llm, tokenizer, Sampling(max_new_tokens=32))
    buffer = make_replay_buffer(1024, batch_size=64, ragged=True)
    collector = make_collector(env, policy, tokenizer.pad_token_id, replay_buffer=buffer,
                               weight_updater=vLLMInProcessUpdater(llm))
    for _ in collector:   # each iteration writes one rollout into the buffer
        ...               # train, then collector.update_policy_weights_(model)
"""

from __future__ import annotations

import torch
from tensordict import NonTensorStack, TensorDict, TensorDictBase
from torch.nn.utils.rnn import pad_sequence
from torchrl.collectors.llm import LLMCollector
from torchrl.data import LazyStackStorage, LazyTensorStorage, ReplayBuffer, TensorStorage
from torchrl.data.replay_buffers.samplers import SamplerWithoutReplacement
from torchrl.envs import EnvBase
from torchrl.envs.llm.transforms import PolicyVersion

from orz_rl import keys
from orz_rl.text_env import as_strings


def _flat(items: list) -> list:
    """The leaves of a nested list (one entry per env element, whatever the collector's shape)."""
    return [leaf for item in items for leaf in (_flat(item) if isinstance(item, list) else [item])]


class ToTrainingBatch:
    """Collector ``postproc``: ragged LLM output -> the dense batch of :mod:`orz_rl.keys`.

    Trains on the token ids the policy sampled, never on re-tokenised text.
    """

    def __init__(self, pad_token_id: int) -> None:
        self.pad = pad_token_id

    def __call__(self, td: TensorDictBase) -> TensorDict:
        # Read key by key: reshaping the whole (lazily stacked) output costs more than the rest.
        prompts = _flat(td.get(("tokens", "prompt"), as_list=True))
        responses = _flat(td.get(("tokens", "response"), as_list=True))
        gen_lp = _flat(td.get(("log_probs", "response"), as_list=True))
        n = len(prompts)
        prompt_len = torch.tensor([p.numel() for p in prompts])
        resp_len = torch.tensor([r.numel() for r in responses])
        prompt_tokens = pad_sequence(prompts, batch_first=True, padding_value=self.pad, padding_side="left")
        p_width = prompt_tokens.shape[-1]
        prompt_mask = torch.arange(p_width).expand(n, p_width) >= (p_width - prompt_len)[:, None]
        # An empty response still occupies one (masked) column so shapes stay valid.
        r_width = max(int(resp_len.max()), 1)
        action = torch.full((n, r_width), self.pad, dtype=torch.int64)
        log_prob = torch.zeros(n, r_width)
        response_mask = torch.arange(r_width).expand(n, r_width) < resp_len[:, None]
        if responses:
            action[response_mask] = torch.cat(responses)
            log_prob[response_mask] = torch.cat(gen_lp).float()
        stopped = td.get(("next", keys.STOPPED)).reshape(n)
        if keys.FINISH_REASON in td.keys():
            finish_reason = self._strings(td, keys.FINISH_REASON)
        else:  # the transformers backend reports none: the env's stop rule decided
            finish_reason = NonTensorStack(*["stop" if s else "length" for s in stopped.tolist()])
        # Tagged at step time, i.e. after generation: the version that sampled the response.
        # Without version tracking every response counts as sampled by version 0.
        version = td.get(("next", keys.POLICY_VERSION), torch.zeros(n, dtype=torch.int64)).reshape(n)
        return TensorDict(
            {
                keys.PROMPT_TOKENS: prompt_tokens,
                keys.PROMPT_MASK: prompt_mask,
                keys.ACTION: action,
                keys.RESPONSE_MASK: response_mask,
                keys.GENERATION_LOG_PROB: log_prob,
                keys.EPISODE_REWARD: td.get(("next", "reward")).reshape(n).float(),
                keys.STOPPED: stopped,
                keys.FINISH_REASON: finish_reason,
                keys.POLICY_VERSION: version,
                keys.PROMPT_ID: td.get(keys.PROMPT_ID).reshape(n),
                keys.RESPONSE_LENGTH: resp_len,
                keys.PROMPT_TEXT: self._strings(td, ("text", "prompt")),
                keys.RESPONSE_TEXT: self._strings(td, ("text", "response")),
                keys.ANSWER: self._strings(td, keys.ANSWER),
            },
            batch_size=[n],
        )

    @staticmethod
    def _strings(td: TensorDictBase, key) -> NonTensorStack:
        """The strings at ``key``, one per row: the stack itself when it is one already (building
        a stack of 256 strings costs more than the rest of this postproc)."""
        value = td.get(key)
        if isinstance(value, NonTensorStack) and value.batch_dims == 1:
            return value
        return NonTensorStack(*_flat(as_strings(value)))


class SingleTurnCollector(LLMCollector):
    """TorchRL's ``LLMCollector`` for envs whose episodes end at their first step.

    ``LLMCollector``'s loop is built for dialogues: it steps with
    ``step_and_maybe_reset``, clones every step's output (the next turn writes into
    the same carrier), and tags policy versions through a ``TransformedEnv`` whose
    inverse pass clones the whole input. On 256 ragged responses that machinery
    took 0.25 s of a 1.7 s CPU-default step, against 0.01 s for the reset and step
    themselves (``bench/step.py``). A single-turn batch needs none of it: each
    iteration is a fresh reset, one policy call and one env step, and nothing
    aliases the previous batch, so nothing is cloned.

    Everything else is ``LLMCollector``'s: iteration, ``postproc``, the replay
    buffer, ``update_policy_weights_`` and its weight updater, ``policy_version``
    and ``increment_version`` (the tracker is TorchRL's ``PolicyVersion``, kept
    by the collector instead of appended to the env). Each batch has the env's
    batch size, flattened; with version tracking it carries
    ``("next", "policy_version")``, the version that sampled it.

    Raises:
        ValueError: from an iteration whose env step left an episode running.
    """

    def __init__(
        self,
        env: EnvBase,
        *,
        policy,
        total_steps: int = -1,
        postproc=None,
        replay_buffer: ReplayBuffer | None = None,
        weight_updater=None,
        track_policy_version: bool = True,
    ) -> None:
        size = env.batch_size.numel()
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

    def _rollout_all(self) -> TensorDictBase:
        td = self.env.step(self.policy(self.env.reset()))
        if not bool(td.get(("next", "done")).all()):
            raise ValueError(
                "SingleTurnCollector needs an env that ends every episode at its first step; "
                f"{type(self.env).__name__} left some running (use LLMCollector for dialogues)"
            )
        if self.policy_version_tracker is not None:
            version = torch.full(td.batch_size, self.policy_version, dtype=torch.int64)
            td.set(("next", keys.POLICY_VERSION), version)
        # Reshaping lazily stacked entries is costly: only a many-dimensional env pays for it.
        return td if td.batch_dims == 1 else td.reshape(-1)


def make_collector(
    env: EnvBase,
    policy,
    pad_token_id: int,
    total_steps: int = -1,
    *,
    replay_buffer: ReplayBuffer | None = None,
    weight_updater=None,
    track_policy_version: bool = True,
) -> SingleTurnCollector:
    """A collector producing one dense batch (every env element once) per iteration.

    Args:
        env: an orz-rl text env (:class:`orz_rl.text_env.RuleRewardEnv`).
        policy: a generation policy of :mod:`orz_rl.generation`.
        pad_token_id: the id that pads prompts (left) and responses (right).
        total_steps: rollouts to produce (-1: no end).
        replay_buffer: when given, each rollout is written into it and the
            iterator yields ``None``; otherwise the iterator yields the batch.
        weight_updater: what ``collector.update_policy_weights_(model)`` calls
            (:class:`orz_rl.weight_sync.vLLMInProcessUpdater` for vLLM).
        track_policy_version: tag every response with ``policy_version``,
            incremented by each weight update.
    """
    return SingleTurnCollector(
        env,
        policy=policy,
        total_steps=total_steps,
        postproc=ToTrainingBatch(pad_token_id),
        replay_buffer=replay_buffer,
        weight_updater=weight_updater,
        track_policy_version=track_policy_version,
    )


def make_replay_buffer(size: int, batch_size: int, *, ragged: bool = False) -> ReplayBuffer:
    """A buffer of training batches, sampled in mini-batches without replacement.

    The default stores dense rows of one width, which is what the trainer keeps
    (one rollout at a time). ``ragged=True`` stores rows as a lazy stack, so that
    rollouts of different response widths accumulate in one buffer.
    """
    storage = LazyStackStorage(size) if ragged else LazyTensorStorage(size)
    return ReplayBuffer(
        storage=storage,
        sampler=SamplerWithoutReplacement(drop_last=False),
        batch_size=batch_size,
    )


def rollout_buffer(batch: TensorDictBase) -> ReplayBuffer:
    """The replay buffer of one rollout: ``batch`` itself as the storage (no copy), sampled
    in mini-batches without replacement (pass ``batch_size`` to ``sample``).

    The trainer trains on one rollout at a time, whose response width changes from step
    to step: a lazily allocated storage per step would copy the batch and announce itself
    in the log at every step.
    """
    return ReplayBuffer(storage=TensorStorage(batch), sampler=SamplerWithoutReplacement(drop_last=False))
