"""DAPO's dynamic sampling: which groups are dropped, how a step's batch is refilled, and its bound."""

from __future__ import annotations

import torch
from tensordict import NonTensorStack, TensorDict

from orz_rl import keys
from orz_rl.rollout.dynamic_sampling import differing_groups, sample_differing_groups
from orz_rl.rollout.training_batch import cat_batches

G, PAD = 3, 99


def test_a_group_is_dropped_when_its_rewards_are_all_equal_not_by_their_mean():
    reward = torch.tensor([0, 0, 0, 1, 1, 1, 0, 1, 0, 0.5, 0.5, 0.5, 0.5, 1, 0.5])
    # Hand-written: group 2 (0, 1, 0) and group 4 (0.5, 1, 0.5) differ; the others are uniform.
    assert differing_groups(reward, G).tolist() == [False, False, True, False, True]


def test_on_0_1_rewards_the_rule_keeps_what_torchrls_mcadvantage_keeps():
    """TorchRL's MCAdvantage drops a group by its mean return outside (low, high): for 0/1 rewards,
    (0, 1) exclusive keeps exactly the groups with a right and a wrong response."""
    from torchrl.objectives.llm import MCAdvantage

    g = torch.Generator().manual_seed(0)
    reward = (torch.rand(40 * G, generator=g) < 0.3).float()
    mc = MCAdvantage(grpo_size=G, prompt_key="group", trajectory_return="sum", keep_return_bounds=(0.0, 1.0))
    kept = []
    for i, r in enumerate(reward.tolist()):
        step = TensorDict(
            {
                "group": torch.tensor([[i // G]]),
                "next": {"reward": torch.tensor([[[r]]]), "done": torch.ones(1, 1, 1, dtype=torch.bool)},
            },
            batch_size=[1, 1],
        )
        out = mc.inv(step)
        if out is not None:
            kept += sorted(set(out.get("group").reshape(-1).tolist()))
    ours = differing_groups(reward, G).nonzero().reshape(-1).tolist()
    assert 0 < len(ours) < 40 and kept == ours


def _rollout(rewards: list[float], first_id: int, prompt_width: int, response_width: int) -> TensorDict:
    """A training batch (the keys ToTrainingBatch writes) of ``len(rewards)`` responses, prompts
    ``first_id`` on, ``G`` responses each: prompt ``i`` has ``1 + i % prompt_width`` tokens
    (left-padded), response ``i`` ``1 + i % response_width``."""
    n = len(rewards)
    p_len = 1 + torch.arange(n) % prompt_width
    r_len = 1 + torch.arange(n) % response_width
    prompt_mask = torch.arange(prompt_width)[None] >= (prompt_width - p_len)[:, None]
    response_mask = torch.arange(response_width)[None] < r_len[:, None]
    ids = torch.arange(first_id, first_id + n)
    return TensorDict(
        {
            keys.PROMPT_TOKENS: torch.where(prompt_mask, ids[:, None], PAD),
            keys.PROMPT_MASK: prompt_mask,
            keys.ACTION: torch.where(response_mask, ids[:, None] + 1000, PAD),
            keys.RESPONSE_MASK: response_mask,
            keys.GENERATION_LOG_PROB: torch.where(response_mask, -0.5, 0.0),
            keys.EPISODE_REWARD: torch.tensor(rewards),
            keys.PROMPT_ID: first_id + torch.arange(n) // G,
            keys.RESPONSE_LENGTH: r_len,
            keys.RESPONSE_TEXT: NonTensorStack(*[f"response {i}" for i in ids.tolist()]),
        },
        batch_size=[n],
    )


class _Rollouts:
    """Each call: the next rollout of 2 prompts x G samples, rewards as listed, widths growing."""

    def __init__(self, *rewards: list[float]) -> None:
        self.rewards, self.calls = list(rewards), 0

    def __call__(self) -> tuple[TensorDict, dict[str, float]]:
        i = self.calls
        self.calls += 1
        batch = _rollout(self.rewards[i], first_id=10 * i, prompt_width=2 + i, response_width=3 + 2 * i)
        return batch, {"generation": 1.0, "scoring": 0.5, "engine": 0.25}


def _fill(rollouts: _Rollouts, max_rounds: int = 3):
    return sample_differing_groups(rollouts, group_size=G, prompts=2, max_rounds=max_rounds, pad_token_id=PAD)


def test_groups_of_equal_rewards_are_replaced_by_the_next_rollouts_until_the_batch_is_full():
    rollouts = _Rollouts([0, 0, 0, 0, 1, 0], [1, 1, 1, 0, 0, 0], [1, 0, 1, 0, 0, 1])
    batch, seconds, figures = _fill(rollouts)
    assert rollouts.calls == 3
    # The first rollout's second group, then the third rollout's first: responses 3-5 and 20-22.
    assert batch[keys.PROMPT_ID].tolist() == [1, 1, 1, 20, 20, 20]
    assert list(batch[keys.RESPONSE_TEXT]) == [f"response {i}" for i in (3, 4, 5, 20, 21, 22)]
    assert differing_groups(batch[keys.EPISODE_REWARD], G).all()
    assert seconds == {"generation": 3.0, "scoring": 1.5, "engine": 0.75}
    assert figures == {
        "sampling/rounds": 3.0,
        "sampling/groups_dropped": 3.0,
        "sampling/extra_responses": 12.0,
        "sampling/groups_short": 0.0,
    }


def test_rows_from_rollouts_of_other_widths_keep_their_tokens_prompts_padded_left_responses_right():
    rollouts = _Rollouts([0, 1, 0, 0, 0, 0], [0, 0, 0, 1, 1, 0])
    batch, _, _ = _fill(rollouts)
    first, second = _rollout([0] * 6, 0, 2, 3)[:3], _rollout([0] * 6, 10, 3, 5)[3:]
    assert batch[keys.PROMPT_TOKENS].shape == (6, 3) and batch[keys.ACTION].shape == (6, 5)
    for row, source in zip(range(6), [*first.unbind(0), *second.unbind(0)], strict=True):
        prompt, mask = batch[keys.PROMPT_TOKENS][row], batch[keys.PROMPT_MASK][row]
        assert torch.equal(prompt[mask], source[keys.PROMPT_TOKENS][source[keys.PROMPT_MASK]])
        assert mask[-1] and (prompt[~mask] == PAD).all(), "prompts stay left-padded"
        action, response = batch[keys.ACTION][row], batch[keys.RESPONSE_MASK][row]
        assert torch.equal(action[response], source[keys.ACTION][source[keys.RESPONSE_MASK]])
        assert response[0] and (action[~response] == PAD).all(), "responses stay right-padded"
        assert (batch[keys.GENERATION_LOG_PROB][row][~response] == 0).all()


def test_after_max_rounds_a_short_batch_is_filled_with_dropped_groups():
    rollouts = _Rollouts([0, 0, 0, 1, 0, 1], [1, 1, 1, 0, 0, 0], [0, 1, 1, 1, 1, 1])
    batch, _, figures = _fill(rollouts, max_rounds=2)
    assert rollouts.calls == 2, "the bound holds"
    # The one differing group, then the first group dropped.
    assert batch[keys.PROMPT_ID].tolist() == [1, 1, 1, 0, 0, 0]
    assert figures["sampling/groups_short"] == 1.0 and figures["sampling/groups_dropped"] == 3.0
    assert figures["sampling/extra_responses"] == 6.0


def test_one_rollout_of_differing_groups_is_the_batch_itself():
    rollouts = _Rollouts([0, 1, 0, 1, 1, 0])
    batch, _, figures = _fill(rollouts)
    assert rollouts.calls == 1 and figures["sampling/extra_responses"] == 0.0
    assert (batch == _rollout([0, 1, 0, 1, 1, 0], 0, 2, 3)).all()


def test_concatenating_one_batch_returns_it_and_widths_pad_with_the_right_values():
    one = _rollout([0.0] * 3, 0, 2, 3)
    assert cat_batches([one], PAD) is one
    both = cat_batches([one, _rollout([0.0] * 3, 5, 4, 1)], PAD)
    assert both.shape == (6,) and both[keys.PROMPT_TOKENS].shape == (6, 4)
    assert not both[keys.PROMPT_MASK][:3, :2].any() and (both[keys.PROMPT_TOKENS][:3, :2] == PAD).all()
    assert both[keys.ACTION].shape == (6, 3) and (both[keys.ACTION][3:, 1:] == PAD).all()
    assert list(both[keys.RESPONSE_TEXT])[3:] == ["response 5", "response 6", "response 7"]


def test_equal_partial_scores_are_dropped_too():
    rollouts = _Rollouts([0.5] * 6, [0.5, 0.5, 1, 0, 0.5, 0])
    _, _, figures = _fill(rollouts)
    assert figures["sampling/groups_dropped"] == 2.0 and figures["sampling/rounds"] == 2.0
