"""Generation policies: TorchRL's LLM wrappers sampling with ORZ's parameters.

Both are TorchRL policies in ``"text"`` mode. They read the env's ``("text", "prompt")`` and
write what :class:`orz_rl.rollout.training_batch.ToTrainingBatch` reads: ``("tokens", "prompt")``,
``("tokens", "response")`` (the sampled ids, never re-tokenised text), ``("log_probs",
"response")`` and ``("text", "response")``.

* :class:`vLLMRolloutWrapper` over a vLLM engine (:mod:`orz_rl.rollout.engines`); it also
  writes ``finish_reason`` (``"stop"`` or ``"length"``).
* :class:`TransformersRolloutWrapper`, TorchRL's ``TransformersWrapper`` around the trainer's own
  actor module.

Sampling is ORZ's: temperature 1, top_p 1, no top_k, the stop strings kept in the output
(``docs/orz_recipe.md``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from tensordict import MetaData, NonTensorStack, TensorDictBase
from torch import nn
from torchrl.modules.llm import TransformersWrapper, vLLMWrapper
from torchrl.modules.llm.policies.common import LogProbs, Masks, Text, Tokens

from orz_rl import keys
from orz_rl.problems.prompts import STOP_STRINGS
from orz_rl.rollout.ray_engines import RayvLLMEngines


def _sampled_log_probs(completion) -> torch.Tensor:
    """The log-prob of each sampled token of a vLLM ``CompletionOutput`` (``logprobs=0``)."""
    if not completion.logprobs:
        return torch.zeros(len(completion.token_ids))
    return torch.tensor(
        [entry[token].logprob for entry, token in zip(completion.logprobs, completion.token_ids, strict=True)]
    )


def _prompt_list(text) -> list[str]:
    """The prompts TorchRL hands ``_generate_from_text``: a string, a list or a ``NonTensorStack``."""
    return [text] if isinstance(text, str) else list(text) if isinstance(text, list) else text.tolist()


def _text_outputs(
    wrapper: TransformersWrapper | vLLMWrapper,
    out: TensorDictBase,
    prompts: list[str],
    ids: list[torch.Tensor],
    log_probs: list[torch.Tensor] | None,
    prompt_ids: list[torch.Tensor] | None = None,
) -> TensorDictBase:
    """Write TorchRL's unpadded ``Masks``, ``Text``, ``Tokens`` and ``LogProbs`` of sampled ``ids``
    (one 1-D tensor per prompt; ``prompt_ids``, where known, the ids each was conditioned on) into
    ``out``, a lazy stack of one TensorDict per prompt.

    Set on the stack itself, not through ``view(-1)`` as TorchRL 0.14.1 does for its 2-D case:
    writing a view back costs more than the rest of this function."""
    if out.ndim != 1:
        raise ValueError(f"one response per prompt: a 1-D batch, not {tuple(out.shape)}")
    response = wrapper.tokenizer.batch_decode([i.tolist() for i in ids], skip_special_tokens=False)
    masks = Masks._from_tensordict(out.empty())
    masks.all_attention_mask = None
    masks.all_assistant_mask = None
    masks.padded = MetaData(False)
    out.set(wrapper.masks_key, masks)
    texts = Text._from_tensordict(out.empty())
    texts.prompt = prompts
    texts.response = response
    texts.full = wrapper._cat_text(prompts, response)
    out.set(wrapper.text_key, texts)
    tokens = Tokens._from_tensordict(out.empty())
    tokens.prompt = prompt_ids
    tokens.response = ids
    tokens.full = None
    tokens.padded = MetaData(False)
    out.set(wrapper.tokens_key, tokens)
    if wrapper.return_log_probs:
        lp = LogProbs._from_tensordict(out.empty())
        lp.response = log_probs
        lp.full = log_probs
        lp.prompt = None
        lp.padded = MetaData(False)
        out.set(wrapper.log_probs_key, lp)
    return out


class vLLMRolloutWrapper(vLLMWrapper):
    """TorchRL's ``vLLMWrapper`` plus what RL needs from each vLLM ``RequestOutput``.

    In ``"text"`` mode TorchRL 0.14.1 returns no prompt token ids and drops the
    finish reason. It samples from an in-process ``vllm.LLM`` or from several engines in
    Ray actors (:class:`orz_rl.rollout.ray_engines.RayvLLMEngines`). This subclass adds
    ``("tokens", "prompt")``, the ids vLLM conditioned on, and ``finish_reason``
    (``"stop"``: a stop string or EOS ended the response; ``"length"``: the token limit
    cut it). One sample per env element: the env repeats each prompt
    ``samples_per_prompt`` times.
    """

    _request_outputs: list = []
    #: Wall-clock seconds spent in the engine's ``generate`` so far (the model's own work, as
    #: against TorchRL's conversions around it; ``bench/step.py`` reads it).
    generate_seconds: float = 0.0

    def _call_generate(self, *args, **kwargs):
        # One progress bar per rollout step is noise in a training log.
        kwargs.setdefault("use_tqdm", False)
        start = time.perf_counter()
        if isinstance(self.model, RayvLLMEngines):  # several engines behind vllm.LLM's generate
            self._request_outputs = self.model.generate(*args, **kwargs)
        else:
            self._request_outputs = super()._call_generate(*args, **kwargs)
        self.generate_seconds += time.perf_counter() - start
        return self._request_outputs

    def _generate_from_text(self, text, sampling_params, out: TensorDictBase) -> TensorDictBase:
        """TorchRL's text-mode generation, reading vLLM's outputs directly.

        TorchRL 0.14.1 first converts every ``RequestOutput`` into nested TensorClasses, only to
        read back the sampled ids and their log-probs: on the CPU default that took half as long
        as the engine's sampling itself (``bench/step.py``). The outputs written here are
        TorchRL's (``Masks``, ``Text``, ``Tokens``, ``LogProbs``, unpadded), with the same values.
        """
        if self.num_samples is not None or self.pad_output:
            return super()._generate_from_text(text, sampling_params, out)
        prompts = _prompt_list(text)
        requests = self._call_generate(prompts, sampling_params=sampling_params)
        completions = [request.outputs[0] for request in requests]
        ids = [torch.tensor(list(c.token_ids), dtype=torch.int64) for c in completions]
        values = [_sampled_log_probs(c) for c in completions] if self.return_log_probs else None
        return _text_outputs(self, out, prompts, ids, values)

    def forward(self, tensordict: TensorDictBase, **kwargs) -> TensorDictBase:
        out = super().forward(tensordict, **kwargs)
        requests = self._request_outputs
        out.get(self.tokens_key).prompt = [
            torch.as_tensor(r.prompt_token_ids, dtype=torch.int64) for r in requests
        ]
        out.set(keys.FINISH_REASON, NonTensorStack(*[r.outputs[0].finish_reason for r in requests]))
        return out


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


# Both TorchRL wrappers: text in, sampled tokens and their log-probs out, unpadded.
_TEXT_POLICY = dict(input_mode="text", generate=True, return_log_probs=True, pad_output=False)


def make_vllm_policy(llm, tokenizer, sampling: Sampling) -> vLLMRolloutWrapper:
    """A vLLM policy over the engine ``llm`` (:func:`make_vllm_engine`, or the Ray-hosted engines of
    :class:`orz_rl.rollout.ray_engines.RayvLLMEngines`)."""
    return vLLMRolloutWrapper(
        llm,
        tokenizer=tokenizer,
        **_TEXT_POLICY,
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


class TransformersRolloutWrapper(TransformersWrapper):
    """TorchRL's ``TransformersWrapper``, timing the model's ``generate`` as
    :class:`vLLMRolloutWrapper` times the engine's (``generate_seconds``), and building its
    outputs without TorchRL 0.14.1's per-response TensorDicts (:meth:`_generate_from_text`)."""

    #: Wall-clock seconds spent in the model's ``generate`` so far.
    generate_seconds: float = 0.0

    def _generate_from_text(self, text, cfg, out: TensorDictBase) -> TensorDictBase:
        """TorchRL's text-mode generation with the same tokens, built directly.

        TorchRL 0.14.1 stacks the tokenised prompts as lazy TensorDicts, pads them back, and
        unpads every output through per-row TensorClass writes; this builds the same outputs
        without that round trip (a small share of a rollout: the model's ``generate`` is most
        of it). The same tokenizer call and ``generate`` call are kept, so the sampled tokens are
        the same; two things differ. A response ends where ``generate``'s fill of pad ids begins
        (:func:`before_fill`): TorchRL 0.14.1 drops every pad id, so a pad token the model sampled
        mid-response vanished, and every later token was scored in another context than it was
        sampled in. And the log-prob of each response's first token is its own, where TorchRL
        0.14.1 writes 0.
        """
        if self.num_samples is not None or self.pad_output or self._in_get_dist_call:
            return super()._generate_from_text(text, cfg, out)
        prompts = _prompt_list(text)
        pad = self.tokenizer.pad_token_id
        encoded = self.tokenizer(prompts, **(self.tokenizer_kwargs | {"padding": True}))
        kwargs = self.generate_kwargs if cfg is None else {**self.generate_kwargs, "generation_config": cfg}
        generated = self.model.generate(
            input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"], **kwargs
        )
        response = generated["sequences"][:, encoded["input_ids"].shape[-1] :]
        keep = before_fill(response, pad)
        ids = [row[mask] for row, mask in zip(response, keep, strict=True)]
        values = None
        if self.return_log_probs:
            logits = torch.stack(list(generated["logits"]), 1).float()
            log_probs = logits.log_softmax(-1).gather(-1, response.unsqueeze(-1)).squeeze(-1)
            values = [row[mask] for row, mask in zip(log_probs, keep, strict=True)]
        prompt_ids = [
            row[mask]
            for row, mask in zip(encoded["input_ids"], encoded["attention_mask"].bool(), strict=True)
        ]
        return _text_outputs(self, out, prompts, ids, values, prompt_ids)

    def forward(self, tensordict: TensorDictBase, **kwargs) -> TensorDictBase:
        # TorchRL calls ``self.model.generate`` itself: time that call, and only while this
        # policy runs (the same module trains between rollouts).
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
            return super().forward(tensordict, **kwargs)
        finally:
            del self.model.generate
            self.model.train(was_training)


def make_transformers_policy(model: nn.Module, tokenizer, sampling: Sampling) -> TransformersRolloutWrapper:
    """TorchRL's TransformersWrapper generating with ``model`` itself."""
    policy = TransformersRolloutWrapper(
        model,
        tokenizer=tokenizer,
        **_TEXT_POLICY,
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
    # TorchRL 0.14.1's TransformersWrapper drops stop strings (it warns on
    # "stop_sequences" and filters unknown keys), while transformers' generate
    # supports them natively: hand them to generate directly. Like vLLM with
    # include_stop_str_in_output, generate keeps the stop string in the output.
    policy.generate_kwargs["stop_strings"] = list(sampling.stop_strings)
    return policy
