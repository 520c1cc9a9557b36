"""Generation policies: TorchRL's LLM wrappers sampling with ORZ's parameters.

Both are TorchRL policies in ``"text"`` mode. They read the env's ``("text", "prompt")`` and
write what :class:`orz_rl.rollout.training_batch.ToTrainingBatch` reads: ``("tokens", "prompt")``,
``("tokens", "response")`` (the sampled ids, never re-tokenised text), ``("log_probs",
"response")`` and ``("text", "response")``.

* :class:`vLLMRolloutWrapper` over a vLLM engine (:mod:`orz_rl.rollout.engines`); it also
  writes ``finish_reason`` (``"stop"`` or ``"length"``).
* :class:`TransformersRolloutWrapper`, TorchRL's ``TransformersWrapper`` around the trainer's own
  actor module.

Each is TorchRL's wrapper (its constructor, ``sampling_params`` or ``generate_kwargs``,
``get_dist``, every input mode) whose ``forward`` serves the rollout's call itself: text in, one
unpadded response per env element, written into the input. It calls the engine's ``generate``
directly and builds TorchRL's output classes (``Text``, ``Tokens``, ``Masks``, ``LogProbs``) from
what it returns, because TorchRL's text mode converts every response through per-row TensorDicts
(on the CPU default that took half as long as the engine's sampling: ``bench/step.py``) and drops
what RL needs (the prompt ids, vLLM's finish reason, the first token's log-prob, a pad id sampled
mid-response). Any other call (``num_samples``, ``pad_output``, batching, a ``device``, a
``get_dist`` pass, another input mode) is TorchRL's own ``forward``.

Sampling is ORZ's: temperature 1, top_p 1, no top_k, the stop strings kept in the output
(``docs/orz_recipe.md``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Literal

import torch
from tensordict import MetaData, NonTensorStack, TensorDict, TensorDictBase, set_list_to_stack
from torch import nn
from torch.nn.utils.rnn import pad_sequence
from torchrl.modules.llm import LogProbs, Masks, Text, Tokens, TransformersWrapper, vLLMWrapper

from orz_rl import keys
from orz_rl.problems.prompts import STOP_STRINGS

#: Either wrapper of this module.
RolloutWrapper = vLLMWrapper | TransformersWrapper


def _sampled_log_probs(completion) -> torch.Tensor:
    """The log-prob of each sampled token of a vLLM ``CompletionOutput`` (``logprobs=0``)."""
    if not completion.logprobs:
        return torch.zeros(len(completion.token_ids))
    return torch.tensor(
        [entry[token].logprob for entry, token in zip(completion.logprobs, completion.token_ids, strict=True)]
    )


def _prompt_list(text) -> list[str]:
    """The prompts at the policy's input key: a string, a list or a ``NonTensorStack``."""
    return [text] if isinstance(text, str) else list(text) if isinstance(text, list) else text.tolist()


def _serves(
    policy: RolloutWrapper, td: TensorDictBase, td_out: TensorDictBase | None, logits_only: bool, kwargs: dict
) -> bool:
    """Whether the rollout path serves a call: text- or tokens-mode generation of one unpadded response for
    each element of a 1-D batch, written into it with the wrapper's own sampling parameters and
    output keys. TorchRL's forward takes any other call (it reshapes other batches to 1-D and
    calls ``forward`` again)."""
    own = {policy.text_key, policy.masks_key, policy.tokens_key, policy.log_probs_key}
    return (
        policy.input_mode in ("text", "tokens")
        and policy.generate
        and policy.num_samples is None
        and not policy.pad_output
        and policy.inplace is True
        and not policy.batching
        and policy.requested_device is None
        and set(policy.out_keys) <= own
        and td.ndim == 1
        and td_out is None
        and not logits_only
        and not kwargs
    )


def _text_outputs(
    policy: RolloutWrapper,
    batch_size: torch.Size,
    prompts: list[str],
    ids: list[torch.Tensor],
    log_probs: list[torch.Tensor] | None,
    prompt_ids: list[torch.Tensor],
) -> TensorDictBase:
    """TorchRL's unpadded ``Masks``, ``Text``, ``Tokens`` and ``LogProbs`` of sampled ``ids`` (one
    1-D tensor per prompt; ``prompt_ids``, the ids each was conditioned on), in a lazy stack of one
    TensorDict per prompt, as TorchRL's wrappers write them.

    Each class wraps the stack itself: a list set on it goes to the rows in one pass, where a
    ``view(-1)`` written back or one object per row costs more than the rest of this function."""
    out = TensorDict(batch_size=batch_size).to_lazystack(0)
    response = policy.tokenizer.batch_decode([i.tolist() for i in ids], skip_special_tokens=False)
    masks = Masks.from_tensordict(out.empty())
    masks.all_attention_mask = None
    masks.all_assistant_mask = None
    masks.padded = MetaData(False)
    out.set(policy.masks_key, masks)
    texts = Text.from_tensordict(out.empty())
    texts.prompt = prompts
    texts.response = response
    texts.full = [p + r for p, r in zip(prompts, response, strict=True)]
    out.set(policy.text_key, texts)
    tokens = Tokens.from_tensordict(out.empty())
    tokens.prompt = prompt_ids
    tokens.response = ids
    tokens.full = None
    tokens.padded = MetaData(False)
    out.set(policy.tokens_key, tokens)
    if policy.return_log_probs:
        lp = LogProbs.from_tensordict(out.empty())
        lp.response = log_probs
        lp.full = log_probs
        lp.prompt = None
        lp.padded = MetaData(False)
        out.set(policy.log_probs_key, lp)
    return out


def _written_into(policy: RolloutWrapper, td: TensorDictBase, out: TensorDictBase) -> TensorDictBase:
    """``td`` with ``out``'s entries in place of the policy's output keys, as TorchRL writes the
    outputs of an ``inplace`` wrapper."""
    return td.exclude(*policy.out_keys, inplace=True).update(out, keys_to_update=policy.out_keys)


class _RolloutPath:
    """What both wrappers add to TorchRL's: ``forward`` serves the rollout call itself
    (:func:`_serves`) through ``_rollout``, inside ``_generating``; TorchRL's forward takes any
    other call. First in the bases, before the TorchRL wrapper."""

    #: Wall-clock seconds spent in the model's ``generate`` so far (its own work, as against the
    #: conversions around it; ``bench/step.py`` reads it). The rollout path counts.
    generate_seconds: float = 0.0
    #: Whether :meth:`streaming` hands each response over as it finishes, while others still
    #: generate (an in-process vLLM engine), rather than all at once after the batch.
    streams: bool = False
    _on_response: Callable[[int, torch.Tensor], None] | None = None

    def __init__(self, model: Any, *, device: torch.device | str | None = None, **kwargs: Any) -> None:
        super().__init__(model, device=device, **kwargs)
        #: The ``device`` asked for: TorchRL's forward places inputs and outputs there.
        self.requested_device = device

    @set_list_to_stack(True)
    def forward(
        self,
        tensordict: TensorDictBase,
        *,
        tensordict_out: TensorDictBase | None = None,
        logits_only: bool = False,
        **kwargs: Any,
    ) -> TensorDictBase:
        """Sample one response per element of ``tensordict`` (the rollout path), or TorchRL's
        forward for any call that path does not serve."""
        with self._generating():
            if _serves(self, tensordict, tensordict_out, logits_only, kwargs):
                if self.input_mode == "tokens":  # token in, token out: nothing is re-tokenised
                    ids = [t.reshape(-1).long() for t in tensordict.get(self.input_key, as_list=True)]
                    return self._rollout_tokens(tensordict, ids)
                return self._rollout(tensordict, _prompt_list(tensordict.get(self.input_key)))
            return super().forward(
                tensordict, tensordict_out=tensordict_out, logits_only=logits_only, **kwargs
            )

    @contextmanager
    def streaming(self, callback: Callable[[int, torch.Tensor], None]) -> Iterator[None]:
        """While inside, the rollout path calls ``callback(k, ids)`` with element ``k``'s sampled
        ids as soon as its response is done: as each request finishes where the engine allows it
        (:attr:`streams`), else for every element once the batch is sampled. A multi-turn env
        starts a tool call there, while other trajectories still generate."""
        self._on_response = callback
        try:
            yield
        finally:
            self._on_response = None

    def _hand_over(self, ids: list[torch.Tensor]) -> None:
        """Every response to the :meth:`streaming` callback, once the batch is sampled."""
        if self._on_response is not None:
            for k, row in enumerate(ids):
                self._on_response(k, row)

    def _generating(self) -> AbstractContextManager:
        """The context both paths run in."""
        return nullcontext()

    def _rollout(self, tensordict: TensorDictBase, prompts: list[str]) -> TensorDictBase:
        """``tensordict`` with one sampled response per prompt written into it."""
        raise NotImplementedError

    def _rollout_tokens(self, tensordict: TensorDictBase, prompt_ids: list[torch.Tensor]) -> TensorDictBase:
        """:meth:`_rollout` for prompts given as token ids, each conditioned on exactly them."""
        raise NotImplementedError


class vLLMRolloutWrapper(_RolloutPath, vLLMWrapper):
    """TorchRL's ``vLLMWrapper`` plus what RL needs from each vLLM ``RequestOutput``.

    It samples from an in-process ``vllm.LLM`` or from several engines in Ray actors
    (:class:`orz_rl.rollout.ray_engines.RayvLLMEngines`, which only the rollout path drives).
    Besides TorchRL's text-mode outputs it writes ``("tokens", "prompt")``, the ids vLLM
    conditioned on, and ``finish_reason`` (``"stop"``: a stop string or EOS ended the response;
    ``"length"``: the token limit cut it), which TorchRL's text mode drops. One sample per env
    element: the env repeats each prompt ``samples_per_prompt`` times.

    Args:
        model: the engine; ``device`` and every other keyword: ``vLLMWrapper``'s.
    """

    def _rollout(self, tensordict: TensorDictBase, prompts: list[str]) -> TensorDictBase:
        return self._generate(tensordict, prompts, prompts)

    def _rollout_tokens(self, tensordict: TensorDictBase, prompt_ids: list[torch.Tensor]) -> TensorDictBase:
        texts = self.tokenizer.batch_decode([ids.tolist() for ids in prompt_ids], skip_special_tokens=False)
        return self._generate(tensordict, [{"prompt_token_ids": ids.tolist()} for ids in prompt_ids], texts)

    @property
    def streams(self) -> bool:
        """An in-process ``vllm.LLM`` returns each request as it finishes; Ray engines do not."""
        return hasattr(self.model, "enqueue") and hasattr(self.model, "llm_engine")

    def _generate(self, tensordict: TensorDictBase, prompts: list, texts: list[str]) -> TensorDictBase:
        """Sample for ``prompts`` (strings, or vLLM's token prompts), whose text is ``texts``."""
        start = time.perf_counter()
        streamed = self._on_response is not None and self.streams
        if streamed:
            requests = self._stream(prompts)
        else:
            # One progress bar per rollout step is noise in a training log.
            requests = self.model.generate(prompts, sampling_params=self.sampling_params, use_tqdm=False)
        self.generate_seconds += time.perf_counter() - start
        completions = [request.outputs[0] for request in requests]
        ids = [torch.tensor(list(c.token_ids), dtype=torch.int64) for c in completions]
        if not streamed:
            self._hand_over(ids)
        values = [_sampled_log_probs(c) for c in completions] if self.return_log_probs else None
        prompt_ids = [torch.as_tensor(r.prompt_token_ids, dtype=torch.int64) for r in requests]
        out = _text_outputs(self, tensordict.batch_size, texts, ids, values, prompt_ids)
        result = _written_into(self, tensordict, out)
        result.set(keys.FINISH_REASON, NonTensorStack(*[c.finish_reason for c in completions]))
        return result

    def _stream(self, prompts: list) -> list:
        """``generate``'s requests, in order, driving the engine step by step (as ``LLM.generate``
        does) so that each finished response goes to the :meth:`streaming` callback at once."""
        # enqueue gives the engine's ids ("<counter>-<random>"); outputs carry the counter.
        enqueued = self.model.enqueue(prompts, self.sampling_params, use_tqdm=False)
        internal = {rid.split("-")[0]: rid for rid in enqueued}
        order = {rid.split("-")[0]: k for k, rid in enumerate(enqueued)}
        requests: list = [None] * len(order)
        engine = self.model.llm_engine
        try:
            while engine.has_unfinished_requests():
                for request in engine.step():
                    if request.finished:
                        k = order.pop(request.request_id)
                        requests[k] = request
                        ids = torch.tensor(list(request.outputs[0].token_ids), dtype=torch.int64)
                        self._on_response(k, ids)
        finally:  # a callback that raised leaves no request behind for the next call
            if order:
                engine.abort_request([internal[rid] for rid in order], internal=True)
        return requests


@dataclass(frozen=True)
class Sampling:
    """How a generation policy samples: one response per env element, ORZ's figures by default."""

    max_new_tokens: int
    """Response length limit; a response cut by it earns reward 0."""
    temperature: float = 1.0
    """Sampling temperature (ORZ: 1.0)."""
    top_p: float = 1.0
    """Nucleus threshold (ORZ: 1.0, off)."""
    top_k: int = 0
    """Top-k (ORZ: 0, off)."""
    stop_strings: tuple[str, ...] = STOP_STRINGS
    """Strings that end a response, kept in its text."""


# Both TorchRL wrappers: text (or token ids) in, sampled tokens and their log-probs out, unpadded.
_POLICY = dict(generate=True, return_log_probs=True, pad_output=False)

#: What a policy reads: ``("text", "prompt")``, or ``("tokens", "prompt")`` (token in, token out).
InputMode = Literal["text", "tokens"]


def make_vllm_policy(
    llm, tokenizer, sampling: Sampling, input_mode: InputMode = "text"
) -> vLLMRolloutWrapper:
    """A vLLM policy over the engine ``llm`` (:func:`make_vllm_engine`, or the Ray-hosted engines of
    :class:`orz_rl.rollout.ray_engines.RayvLLMEngines`), reading ``input_mode``'s prompt."""
    return vLLMRolloutWrapper(
        llm,
        tokenizer=tokenizer,
        input_mode=input_mode,
        **_POLICY,
        generate_kwargs={
            "max_new_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            # TorchRL rejects top_k=0; vLLM's default is ORZ's: no top-k.
            **({"top_k": sampling.top_k} if sampling.top_k > 0 else {}),
            # TorchRL maps its common name to vLLM's `stop`; a plain `stop` would be dropped.
            "stop_sequences": list(sampling.stop_strings),
            "include_stop_str_in_output": True,
            # The sampled token's log-prob only (0 alternatives), none for the prompt.
            "logprobs": 0,
            "prompt_logprobs": None,
        },
    )


def before_fill(response: torch.Tensor, pad: int) -> torch.Tensor:
    """The mask of each row's tokens before the run of pad ids ``generate`` fills a finished row
    with; a pad id sampled mid-response is kept (one sampled last is indistinguishable, and
    dropped)."""
    real = response != pad
    width = response.shape[-1]
    length = torch.where(real.any(-1), width - real.flip(-1).int().argmax(-1), 0)
    return torch.arange(width) < length[:, None]


class TransformersRolloutWrapper(_RolloutPath, TransformersWrapper):
    """TorchRL's ``TransformersWrapper``, timing the model's ``generate`` as
    :class:`vLLMRolloutWrapper` times the engine's (``generate_seconds``).

    Its rollout path makes the same tokenizer call and the same ``generate`` call as TorchRL's
    text mode, so the sampled tokens are the same; two things differ. A response ends where
    ``generate``'s fill of pad ids begins (:func:`before_fill`): TorchRL drops every pad id, so a
    pad token the model sampled mid-response vanished, and every later token was scored in
    another context than it was sampled in. And the log-prob of each response's first token is
    its own, where TorchRL writes 0.

    Args:
        model: the causal LM; ``device`` and every other keyword: ``TransformersWrapper``'s.
    """

    def _rollout(self, tensordict: TensorDictBase, prompts: list[str]) -> TensorDictBase:
        return _written_into(self, tensordict, self._sample_text(prompts, tensordict.batch_size))

    def _rollout_tokens(self, tensordict: TensorDictBase, prompt_ids: list[torch.Tensor]) -> TensorDictBase:
        pad = self.tokenizer.pad_token_id
        input_ids = pad_sequence(prompt_ids, batch_first=True, padding_value=pad, padding_side="left")
        width = input_ids.shape[-1]
        lengths = torch.tensor([len(ids) for ids in prompt_ids])
        attention_mask = (torch.arange(width) >= (width - lengths)[:, None]).long()
        texts = self.tokenizer.batch_decode([ids.tolist() for ids in prompt_ids], skip_special_tokens=False)
        out = self._sample(texts, input_ids, attention_mask, tensordict.batch_size)
        return _written_into(self, tensordict, out)

    @contextmanager
    def _generating(self) -> Iterator[None]:
        """Time the model's ``generate``, in eval mode, while this policy runs (the same module
        trains between rollouts); TorchRL's forward, calling back into ``forward``, is timed once."""
        if "generate" in vars(self.model):
            yield
            return
        generate = self.model.generate

        def timed(*args, **kw):
            start = time.perf_counter()
            try:
                return generate(*args, **kw)
            finally:
                self.generate_seconds += time.perf_counter() - start

        self.model.generate = timed
        was_training = self.model.training
        self.model.eval()  # a gradient-checkpointed model in training mode drops its KV cache in generate
        try:
            yield
        finally:
            del self.model.generate
            self.model.train(was_training)

    def _sample_text(self, prompts: list[str], batch_size: torch.Size) -> TensorDictBase:
        """One response per prompt: the outputs of :func:`_text_outputs`."""
        encoded = self.tokenizer(prompts, **(self.tokenizer_kwargs | {"padding": True}))
        return self._sample(prompts, encoded["input_ids"], encoded["attention_mask"], batch_size)

    def _sample(
        self,
        prompts: list[str],
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        batch_size: torch.Size,
    ) -> TensorDictBase:
        """One response per row of the left-padded ``input_ids`` (whose text is ``prompts``)."""
        generated = self.model.generate(
            input_ids=input_ids, attention_mask=attention_mask, **self.generate_kwargs
        )
        response = generated["sequences"][:, input_ids.shape[-1] :]
        keep = before_fill(response, self.tokenizer.pad_token_id)
        ids = [row[mask] for row, mask in zip(response, keep, strict=True)]
        values = None
        if self.return_log_probs:
            logits = torch.stack(list(generated["logits"]), 1).float()
            log_probs = logits.log_softmax(-1).gather(-1, response.unsqueeze(-1)).squeeze(-1)
            values = [row[mask] for row, mask in zip(log_probs, keep, strict=True)]
        prompt_ids = [row[mask] for row, mask in zip(input_ids, attention_mask.bool(), strict=True)]
        self._hand_over(ids)
        return _text_outputs(self, batch_size, prompts, ids, values, prompt_ids)


def make_transformers_policy(
    model: nn.Module, tokenizer, sampling: Sampling, input_mode: InputMode = "text"
) -> TransformersRolloutWrapper:
    """TorchRL's TransformersWrapper generating with ``model`` itself, reading ``input_mode``'s prompt."""
    policy = TransformersRolloutWrapper(
        model,
        tokenizer=tokenizer,
        input_mode=input_mode,
        **_POLICY,
        generate_kwargs={
            "do_sample": True,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            # transformers samples from the top 50 unless told otherwise; ORZ has no top_k.
            "top_k": sampling.top_k if sampling.top_k > 0 else None,
            "max_new_tokens": sampling.max_new_tokens,
            "pad_token_id": tokenizer.pad_token_id,
        },
    )
    # TorchRL's TransformersWrapper drops stop strings (it warns on "stop_sequences" and
    # filters unknown keys), while transformers' generate supports them: hand them to generate
    # directly. Like vLLM with include_stop_str_in_output, generate keeps them in the output.
    policy.generate_kwargs["stop_strings"] = list(sampling.stop_strings)
    return policy
