"""The actor: a causal LM, as a TorchRL policy for generation and for the loss.

* Generation: TorchRL's :class:`~torchrl.modules.llm.TransformersWrapper` in
  ``"text"`` mode, with ORZ's sampling (temperature 1, top_p 1, no top_k) and
  stop strings.
* Training: a :class:`~tensordict.nn.ProbabilisticTensorDictSequential` whose
  distribution is a per-token ``Categorical`` over the response positions, so
  TorchRL's ``ClipPPOLoss`` reads per-token log-probs of ``action``.
"""

from __future__ import annotations

import torch
from tensordict.nn import (
    ProbabilisticTensorDictModule,
    ProbabilisticTensorDictSequential,
    TensorDictModule,
)
from torch import nn

from orz_rl import keys
from orz_rl.modeling import response_hidden_states
from orz_rl.prompt import STOP_STRINGS


class ResponseLogits(nn.Module):
    """Logits ``[N, R, V]`` of the actor at the positions predicting each response token."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, prompt_tokens, prompt_mask, action, response_mask) -> torch.Tensor:
        hidden = response_hidden_states(
            self.model.get_decoder(), prompt_tokens, prompt_mask, action, response_mask
        )
        # The LM head runs on response positions only: the prompt needs no logits.
        return self.model.get_output_embeddings()(hidden).float()


def make_training_actor(model: nn.Module) -> ProbabilisticTensorDictSequential:
    """The actor as TorchRL's loss modules expect it (``get_dist`` over ``action``)."""
    logits = TensorDictModule(
        ResponseLogits(model),
        in_keys=[keys.PROMPT_TOKENS, keys.PROMPT_MASK, keys.ACTION, keys.RESPONSE_MASK],
        out_keys=["logits"],
    )
    dist = ProbabilisticTensorDictModule(
        in_keys=["logits"],
        out_keys=[keys.ACTION],
        distribution_class=torch.distributions.Categorical,
        return_log_prob=False,
    )
    return ProbabilisticTensorDictSequential(logits, dist)


def make_generation_policy(
    model: nn.Module,
    tokenizer,
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    stop_strings: tuple[str, ...] = STOP_STRINGS,
):
    """TorchRL's TransformersWrapper sampling one response per env element."""
    from torchrl.modules.llm import TransformersWrapper

    policy = TransformersWrapper(
        model,
        tokenizer=tokenizer,
        input_mode="text",
        generate=True,
        return_log_probs=True,
        pad_output=False,
        generate_kwargs={
            "do_sample": True,
            "temperature": temperature,
            "top_p": top_p,
            # transformers samples from the top 50 unless told otherwise; ORZ has no top_k.
            "top_k": top_k if top_k > 0 else None,
            "max_new_tokens": max_new_tokens,
            "pad_token_id": tokenizer.pad_token_id,
        },
    )
    # TorchRL 0.14.1's TransformersWrapper drops stop strings (it warns on
    # "stop_sequences" and filters unknown keys), while transformers' generate
    # supports them natively: hand them to generate directly. Like vLLM with
    # include_stop_str_in_output, generate keeps the stop string in the output.
    policy.generate_kwargs["stop_strings"] = list(stop_strings)
    return policy
