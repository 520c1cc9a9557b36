"""The critic: a separate copy of the base transformer with a scalar value head.

ORZ (``docs/orz_recipe.md``): ``Linear(hidden_size, 1, bias=False)`` with
weights drawn from N(0, 1 / (hidden_size + 1)), one value per token position.
Actor and critic share no weights: the critic loads its own copy of the base model.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tensordict.nn import TensorDictModule
from torch import nn

from orz_rl import keys
from orz_rl.models.loading import load_backbone
from orz_rl.ppo.forward import response_hidden_states

VALUE_HEAD_FILE = "value_head.safetensors"


class Critic(nn.Module):
    """Base transformer + value head; ``forward`` gives V(s_t) ``[N, R, 1]`` per response token."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.value_head = nn.Linear(backbone.config.hidden_size, 1, bias=False)
        #: Token budget of a packed row in the forward passes (0: padded batches), not saved:
        #: how to batch is the run's choice (``ppo.pack_tokens``), not the model's.
        self.pack_tokens = 0
        # ORZ's init for a critic made from the policy's base model: N(0, 1 / (hidden + 1)),
        # so that the first values are near 0 rather than noise.
        nn.init.normal_(self.value_head.weight, mean=0.0, std=1 / (backbone.config.hidden_size + 1))

    @classmethod
    def from_pretrained(cls, path: str | Path, dtype: torch.dtype = torch.float32) -> Critic:
        """A fresh critic from a base model, or a saved critic (backbone + value head)."""
        critic = cls(load_backbone(str(path), dtype=dtype))
        head = Path(path) / VALUE_HEAD_FILE
        if head.is_file():
            critic.value_head.load_state_dict(load_file(str(head)))
        return critic.to(dtype)

    def save_pretrained(self, path: str | Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        """Hugging Face format: the backbone's files plus ``value_head.safetensors`` (from
        ``state_dict``, the critic's whole one, where its own parameters are FSDP shards)."""
        path = Path(path)
        state_dict = self.state_dict() if state_dict is None else state_dict

        def part(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix) :]: v.contiguous() for k, v in state_dict.items() if k.startswith(prefix)}

        self.backbone.save_pretrained(path, safe_serialization=True, state_dict=part("backbone."))
        save_file(part("value_head."), str(path / VALUE_HEAD_FILE))
        (path / "critic.json").write_text(json.dumps({"value_head": VALUE_HEAD_FILE, "bias": False}))

    def forward(self, prompt_tokens, prompt_mask, action, response_mask) -> torch.Tensor:
        hidden = response_hidden_states(
            self.backbone, prompt_tokens, prompt_mask, action, response_mask, self.pack_tokens
        )
        return self.value_head(hidden).float()


def make_value_operator(critic: Critic) -> TensorDictModule:
    """The critic as a TorchRL value module writing ``state_value``."""
    return TensorDictModule(
        critic,
        in_keys=[keys.PROMPT_TOKENS, keys.PROMPT_MASK, keys.ACTION, keys.RESPONSE_MASK],
        out_keys=[keys.STATE_VALUE],
    )
