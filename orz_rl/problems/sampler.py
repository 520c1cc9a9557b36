"""The order prompts are drawn in: shuffled passes over a dataset, resumable exactly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


class PromptSampler:
    """Shuffled passes over a dataset, resumable from :meth:`state_dict`.

    Each pass (an ORZ "episode") is a fresh permutation drawn from ``seed`` and
    the pass index, so a run restored at any position consumes exactly the
    prompts an uninterrupted run would have.
    """

    def __init__(self, problems: Sequence[Any], seed: int = 0) -> None:
        self.problems = problems
        self.seed = seed
        self.epoch = 0
        self.position = 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.problems), generator=g).tolist()

    def next_batch(self, n: int) -> list[tuple[int, Any]]:
        """The next ``n`` ``(index, problem)`` pairs, crossing pass boundaries."""
        out = []
        while len(out) < n:
            if self.position == len(self._order):
                self.epoch += 1
                self.position = 0
                self._order = self._permutation(self.epoch)
            idx = self._order[self.position]
            self.position += 1
            out.append((idx, self.problems[idx]))
        return out

    def seek(self, drawn: int) -> None:
        """Continue as if ``drawn`` prompts had been drawn since the start (the order is a function
        of the seed alone, so a count is a position)."""
        self.epoch, self.position = divmod(drawn, len(self.problems))
        self._order = self._permutation(self.epoch)

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed, self.epoch, self.position = state["seed"], state["epoch"], state["position"]
        self._order = self._permutation(self.epoch)
