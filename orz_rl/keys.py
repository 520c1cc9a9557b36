"""The TensorDict keys that flow from environment to loss, listed once.

A training batch has batch size ``[N]`` (N = prompts x samples per prompt, the
samples of a prompt adjacent) and these entries:

============================  ===========  =======================================================
key                           shape        meaning
============================  ===========  =======================================================
``prompt_tokens``             [N, P]       prompt token ids, left-padded with the pad id
``prompt_mask``               [N, P]       True on real prompt tokens
``action``                    [N, R]       sampled response token ids, right-padded
``response_mask``             [N, R]       True on real response tokens (a tool's output included)
``assistant_mask``            [N, R]       True on the tokens the policy sampled: the ones trained on
                                           (``response_mask`` less a tool's output; the same in a
                                           single-turn batch, and taken to be where it is absent)
``generation_log_prob``       [N, R]       log-probs reported by the generation backend
``action_log_prob``           [N, R]       log-probs of the actor before the update (PPO's old)
``ref_log_prob``              [N, R]       log-probs of the frozen reference model (with a KL term)
``state_value``               [N, R, 1]    critic value V(s_t) before response token t
``("next", "state_value")``   [N, R, 1]    V(s_{t+1}); 0 after the last token
``("next", "reward")``        [N, R, 1]    episode reward on the last response token, 0 elsewhere
``("next", "done")``          [N, R, 1]    True on the last response token and on padding
``("next", "terminated")``    [N, R, 1]    same as done (episodes end, they are never truncated)
``("collector", "mask")``     [N, R, 1]    ``assistant_mask`` where TorchRL's losses look for a mask
``advantage``                 [N, R, 1]    GAE advantage, normalised over the batch's valid tokens
``value_target``              [N, R, 1]    GAE return, the critic's regression target
``episode_reward``            [N]          the response's reward trained on: the env's, shaped where
                                           ``reward.overlong_penalty`` is set
``score``                     [N]          the env's reward before that shaping (only where shaped)
``stopped``                   [N]          True if the response ended on a stop string (or EOS)
``finish_reason``             [N] (str)    ``"stop"`` (stop string or EOS) or ``"length"`` (cut by the limit)
``policy_version``            [N]          version of the weights that sampled the response
``prompt_id``                 [N]          index of the prompt in its dataset
``response_length``           [N]          number of response tokens
``prompt_text``               [N] (str)    the rendered prompt
``response_text``             [N] (str)    the decoded response
``answer``                    [N] (str)    the ground truth
============================  ===========  =======================================================
"""

from __future__ import annotations

PROMPT_TOKENS = "prompt_tokens"
PROMPT_MASK = "prompt_mask"
ACTION = "action"
RESPONSE_MASK = "response_mask"
ASSISTANT_MASK = "assistant_mask"
GENERATION_LOG_PROB = "generation_log_prob"
ACTION_LOG_PROB = "action_log_prob"
REF_LOG_PROB = "ref_log_prob"
STATE_VALUE = "state_value"
NEXT_STATE_VALUE = ("next", "state_value")
REWARD = ("next", "reward")
DONE = ("next", "done")
TERMINATED = ("next", "terminated")
#: TorchRL's validity mask (``LossModule.loss_mask_key="auto"``), so stock losses skip padding.
LOSS_MASK = ("collector", "mask")
ADVANTAGE = "advantage"
VALUE_TARGET = "value_target"
EPISODE_REWARD = "episode_reward"
SCORE = "score"
STOPPED = "stopped"
FINISH_REASON = "finish_reason"
POLICY_VERSION = "policy_version"
PROMPT_ID = "prompt_id"
RESPONSE_LENGTH = "response_length"
PROMPT_TEXT = "prompt_text"
RESPONSE_TEXT = "response_text"
ANSWER = "answer"


def assistant_mask(td):
    """The tokens trained on: ``assistant_mask``, or ``response_mask`` in a batch without one."""
    mask = td.get(ASSISTANT_MASK, None)
    return td.get(RESPONSE_MASK) if mask is None else mask


def score(td):
    """The env's reward of each response: ``score`` where the trainer shaped ``episode_reward``."""
    value = td.get(SCORE, None)
    return td.get(EPISODE_REWARD) if value is None else value
