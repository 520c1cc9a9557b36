"""Per-step metrics: the figures ORZ plots, to JSONL and TensorBoard.

Field names of ``metrics.jsonl`` (one JSON object per generation step) are
documented in the README; :func:`rollout_metrics` computes the rollout part.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from tensordict import TensorDict

from orz_rl import keys

REFLECTION_WORDS = ("wait,", "recheck", "retry", "alternatively,", "however,")


def repetition_score(text: str, n: int = 20) -> float:
    """Share of character n-grams that repeat an earlier one (0: none, near 1: a loop)."""
    grams = [text[i : i + n] for i in range(max(len(text) - n + 1, 0))]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def reflection_counts(text: str) -> Counter[str]:
    lower = text.lower()
    return Counter({w: len(re.findall(re.escape(w), lower)) for w in REFLECTION_WORDS})


def rollout_metrics(batch: TensorDict, samples_per_prompt: int, max_new_tokens: int) -> dict[str, float]:
    """Reward, pass@n, lengths, truncation, repetition and reflection figures of one rollout."""
    reward = batch.get(keys.EPISODE_REWARD).float()
    length = batch.get(keys.RESPONSE_LENGTH).float()
    stopped = batch.get(keys.STOPPED)
    correct = reward > 0.5
    texts = batch.get(keys.RESPONSE_TEXT).tolist()
    pass_at_n = correct.view(-1, samples_per_prompt).any(-1).float().mean().item()
    out = {
        "reward/mean": reward.mean().item(),
        f"reward/pass@{samples_per_prompt}": pass_at_n,
        "response_length/mean": length.mean().item(),
        "response_length/std": length.std(unbiased=False).item(),
        "response_length/correct_mean": length[correct].mean().item() if correct.any() else 0.0,
        "response_length/incorrect_mean": length[~correct].mean().item() if (~correct).any() else 0.0,
        "response/truncated_share": (~stopped).float().mean().item(),
        "response/hit_max_tokens_share": (length >= max_new_tokens).float().mean().item(),
        "response/repetition_mean": sum(map(repetition_score, texts)) / len(texts),
    }
    total: Counter[str] = Counter()
    for t in texts:
        total.update(reflection_counts(t))
    for w in REFLECTION_WORDS:
        out[f"reflection/{w.rstrip(',')}"] = total[w] / len(texts)
    return out


def _step(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return 1 << 62  # a torn last line: dropped


class MetricsLogger:
    """Appends one JSON line per step to ``metrics.jsonl`` and mirrors scalars to TensorBoard."""

    def __init__(self, run_dir: Path, tensorboard: bool = True, start_step: int = 0) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / "metrics.jsonl"
        # A resumed run keeps the steps up to its checkpoint and drops those a crash left after it.
        kept = []
        if self.path.exists():
            kept = [line for line in self.path.read_text().splitlines() if _step(line) <= start_step]
        self.path.write_text("".join(line + "\n" for line in kept))
        self._file = self.path.open("a", buffering=1)
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start_step + 1)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        row = {"step": step, **{k: float(v) for k, v in metrics.items()}}
        self._file.write(json.dumps(row) + "\n")
        if self._tb is not None:
            for k, v in metrics.items():
                self._tb.add_scalar(k, float(v), step)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()
