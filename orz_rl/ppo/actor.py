"""The actor for the loss: a causal LM as a TorchRL probabilistic policy.

A :class:`~tensordict.nn.ProbabilisticTensorDictSequential` whose distribution
is a per-token ``Categorical`` over the response positions, so TorchRL's
``ClipPPOLoss`` reads per-token log-probs of ``action``. Generation (vLLM or
transformers) is :mod:`orz_rl.rollout.engines`.
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
from orz_rl.ppo.forward import response_hidden_states


class ResponseLogits(nn.Module):
    """Logits ``[N, R, V]`` of the actor at the positions predicting each response token."""

    def __init__(self, model: nn.Module, pack_tokens: int = 0) -> None:
        super().__init__()
        self.model = model
        #: Token budget of a packed row (0: padded batches), see :func:`response_hidden_states`.
        self.pack_tokens = pack_tokens

    def forward(self, prompt_tokens, prompt_mask, action, response_mask) -> torch.Tensor:
        hidden = response_hidden_states(
            self.model.get_decoder(), prompt_tokens, prompt_mask, action, response_mask, self.pack_tokens
        )
        # The LM head runs on response positions only: the prompt needs no logits.
        return self.model.get_output_embeddings()(hidden).float()


def make_training_actor(model: nn.Module, pack_tokens: int = 0) -> ProbabilisticTensorDictSequential:
    """The actor as TorchRL's loss modules expect it (``get_dist`` over ``action``); its forward
    passes pack sequences into rows of ``pack_tokens`` (0: padded batches)."""
    logits = TensorDictModule(
        ResponseLogits(model, pack_tokens),
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
