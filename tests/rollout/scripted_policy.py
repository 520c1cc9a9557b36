"""A policy whose next turn is a function of the text it has read, so that every token can be
checked (the multi-turn tests' stand-in for a model)."""

from __future__ import annotations

from contextlib import contextmanager

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
            self._write(td, k, ids)
        return td

    def _write(self, td: TensorDictBase, k: int, ids: torch.Tensor) -> None:
        text = self.respond(self.tokenizer.decode(ids.tolist()))
        response = torch.tensor(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        td[k].set(("tokens", "response"), response)
        td[k].set(("log_probs", "response"), -0.25 * torch.arange(1, len(response) + 1))


class StreamingScriptedPolicy(ScriptedPolicy):
    """:class:`ScriptedPolicy` that, like vLLM's in-process engine, hands each row's turn to the
    ``streaming`` callback as soon as it is written, before the next row is; ``handed(ids)`` is
    what it hands over (the ids it wrote, unless a test says otherwise)."""

    def __init__(self, tokenizer, respond, handed=lambda ids: ids) -> None:
        super().__init__(tokenizer, respond)
        self.handed, self.callback = handed, None

    @contextmanager
    def streaming(self, callback):
        self.callback = callback
        try:
            yield
        finally:
            self.callback = None

    def __call__(self, td: TensorDictBase) -> TensorDictBase:
        prefixes = td.get(("tokens", "prompt"), as_list=True)
        self.calls.append(len(prefixes))
        for k, ids in enumerate(prefixes):
            self._write(td, k, ids)
            if self.callback is not None:
                self.callback(k, self.handed(td[k].get(("tokens", "response"))))
        return td
