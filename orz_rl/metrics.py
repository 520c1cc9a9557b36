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


def rewrite_jsonl(path: Path, rows: list[dict]):
    """``path`` holding exactly ``rows``, opened for appending (line-buffered)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path.open("a", buffering=1)


def truncate_jsonl(path: Path, last_step: int) -> None:
    """Drop the lines of ``path`` logged after ``last_step`` (and a torn last line)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= last_step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            pass
    path.write_text("".join(line + "\n" for line in kept))


class MetricsLogger:
    """Appends one JSON line per step to ``metrics.jsonl`` and mirrors scalars to TensorBoard.

    ``history`` holds the metrics of the steps already run (a resumed run's, from its
    checkpoint): the file is rewritten to them, and TensorBoard drops what it logged after.
    """

    def __init__(self, run_dir: Path, tensorboard: bool = True, history: list[dict[str, float]] = ()) -> None:
        self.path = run_dir / "metrics.jsonl"
        self._file = rewrite_jsonl(self.path, [{"step": i + 1, **m} for i, m in enumerate(history)])
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=len(history) + 1)

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
