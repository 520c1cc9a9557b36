"""The actor for the loss: a causal LM as a TorchRL probabilistic policy.

A :class:`~tensordict.nn.ProbabilisticTensorDictSequential` whose distribution covers the
response positions, so TorchRL's ``ClipPPOLoss`` reads per-token log-probs of ``action``
(``get_dist(td).log_prob(td["action"])``). Its module computes those log-probs directly from the
decoder's hidden states, a chunk of tokens at a time (:mod:`orz_rl.ppo.token_log_probs`), rather
than handing the full ``[N, R, vocabulary]`` logits to a ``Categorical``: the loss needs only the
chosen tokens' log-probs (and, with an entropy bonus, the entropies), and the full logits are a
policy pass's largest tensor. Generation (vLLM or transformers) is :mod:`orz_rl.rollout.engines`.
"""

from __future__ import annotations

import torch
from tensordict.nn import (
    ProbabilisticTensorDictModule,
    ProbabilisticTensorDictSequential,
    TensorDictModule,
)
from torch import nn
from torch.distributions import Distribution, constraints

from orz_rl import keys
from orz_rl.ppo.forward import response_hidden_states
from orz_rl.ppo.token_log_probs import token_log_probs

#: The actor module's outputs: ``[N, R]`` log-probs of ``action`` and entropies (0 at padding), apart
#: from the batch's ``action_log_prob`` (PPO's old log-probs, which a loss reads beside them).
TOKEN_LOG_PROB = "token_log_prob"
TOKEN_ENTROPY = "token_entropy"


class ResponseLogProbs(nn.Module):
    """Log-probs ``[N, R]`` of each response token under the actor (and the entropies of its
    distributions where ``with_entropy``; zeros otherwise), 0 at padding."""

    def __init__(
        self, model: nn.Module, pack_tokens: int = 0, chunk_tokens: int = 0, with_entropy: bool = False
    ) -> None:
        super().__init__()
        self.model = model
        #: Token budget of a packed row (0: padded batches), see :func:`response_hidden_states`.
        self.pack_tokens = pack_tokens
        #: Response tokens per LM-head chunk (0: all at once), see :func:`token_log_probs`.
        self.chunk_tokens = chunk_tokens
        self.with_entropy = with_entropy

    def forward(self, prompt_tokens, prompt_mask, action, response_mask) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = response_hidden_states(
            self.model.get_decoder(), prompt_tokens, prompt_mask, action, response_mask, self.pack_tokens
        )
        # The LM head runs on valid response positions only: neither prompt nor padding needs logits.
        log_prob, entropy = token_log_probs(
            self.model.get_output_embeddings(),
            hidden[response_mask],
            action[response_mask],
            self.chunk_tokens,
            self.with_entropy,
        )
        out_log_prob = hidden.new_zeros(action.shape, dtype=torch.float32)
        out_log_prob[response_mask] = log_prob
        out_entropy = torch.zeros_like(out_log_prob)
        if entropy is not None:
            out_entropy[response_mask] = entropy
        return out_log_prob, out_entropy


class ResponseTokens(Distribution):
    """The actor's per-token distribution over the response, known at the tokens it was evaluated
    on: ``log_prob`` of those tokens (``action``) and ``entropy`` are what :class:`ResponseLogProbs`
    computed; any other value, or sampling, is an error (the training actor never samples)."""

    arg_constraints: dict = {}
    support = constraints.integer_interval(0, 2**62)

    def __init__(
        self, action_log_prob, action_entropy, action, has_entropy: bool = False, validate_args=None
    ) -> None:
        self._log_prob, self._entropy, self._action = action_log_prob, action_entropy, action
        self._has_entropy = has_entropy
        super().__init__(batch_shape=action_log_prob.shape, validate_args=False)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if value is not self._action and not torch.equal(value, self._action):
            raise ValueError("the training actor knows only the log-probs of the tokens it was given")
        return self._log_prob

    def entropy(self) -> torch.Tensor:
        if not self._has_entropy:
            raise ValueError("this training actor computes no entropies: make it with with_entropy=True")
        return self._entropy


def make_training_actor(
    model: nn.Module, pack_tokens: int = 0, chunk_tokens: int = 0, with_entropy: bool = False
) -> ProbabilisticTensorDictSequential:
    """The actor as TorchRL's loss modules expect it (``get_dist`` over ``action``); its forward
    passes pack sequences into rows of ``pack_tokens`` (0: padded batches) and run the LM head
    ``chunk_tokens`` response tokens at a time (0: all at once). ``with_entropy``: the
    distribution's ``entropy()`` is computed (for an entropy bonus); else it is an error."""
    scores = TensorDictModule(
        ResponseLogProbs(model, pack_tokens, chunk_tokens, with_entropy),
        in_keys=[keys.PROMPT_TOKENS, keys.PROMPT_MASK, keys.ACTION, keys.RESPONSE_MASK],
        out_keys=[TOKEN_LOG_PROB, TOKEN_ENTROPY],
    )
    dist = ProbabilisticTensorDictModule(
        in_keys={"action_log_prob": TOKEN_LOG_PROB, "action_entropy": TOKEN_ENTROPY, "action": keys.ACTION},
        out_keys=[keys.ACTION],
        distribution_class=ResponseTokens,
        distribution_kwargs={"has_entropy": with_entropy},
        return_log_prob=False,
    )
    return ProbabilisticTensorDictSequential(scores, dist)
