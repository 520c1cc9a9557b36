"""A policy whose next turn is a function of the text it has read, so that every token can be
checked (the multi-turn tests' stand-in for a model)."""

from __future__ import annotations

import torch
from tensordict import TensorDictBase


class ScriptedPolicy:
    """Writes ``respond(text read so far)`` as each live trajectory's next turn, with log-probs
    -0.25, -0.5, ... so that they can be followed into the batch."""

    #: What it writes, as TorchRL's LLM wrappers declare it (a collector reads it at start-up).
    out_keys = [("tokens", "response"), ("log_probs", "response")]

    def __init__(self, tokenizer, respond) -> None:
        self.tokenizer, self.respond = tokenizer, respond
        self.calls: list[int] = []

    def __call__(self, td: TensorDictBase) -> TensorDictBase:
        prefixes = td.get(("tokens", "prompt"), as_list=True)
        self.calls.append(len(prefixes))
        for k, ids in enumerate(prefixes):
            text = self.respond(self.tokenizer.decode(ids.tolist()))
            response = torch.tensor(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            td[k].set(("tokens", "response"), response)
            td[k].set(("log_probs", "response"), -0.25 * torch.arange(1, len(response) + 1))
        return td
