"""The figures ORZ plots of each rollout: reward, pass@n, lengths, truncation, repetition, reflection.

Every field of ``metrics.jsonl`` is documented in ``docs/metrics.md``; :func:`rollout_metrics`
computes the rollout's part (the trainer adds its phases' figures).
"""

from __future__ import annotations

import os
import re
import resource
from collections import Counter
from pathlib import Path

import torch
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
    reward = keys.score(batch).float()
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


def training_batch_metrics(batch: TensorDict) -> dict[str, float]:
    """The batch's values and raw advantages (``V_target - V``) over valid tokens, and the newest
    policy version that sampled it. Without a critic (a critic-free ``ppo.advantage``) the advantages
    are the estimator's own, and there are no values."""
    mask = keys.assistant_mask(batch)
    out = {"data/policy_version": batch.get(keys.POLICY_VERSION).max().item()}
    if not mask.any():  # every response masked out (reward.overlong_filter): nothing to average
        return out
    if keys.STATE_VALUE not in batch.keys():
        advantage = batch.get(keys.ADVANTAGE).squeeze(-1)
        return out | {
            "advantage/mean": advantage[mask].mean().item(),
            "advantage/abs_mean": advantage[mask].abs().mean().item(),
        }
    values = batch.get(keys.STATE_VALUE).squeeze(-1)
    raw_adv = batch.get(keys.VALUE_TARGET).squeeze(-1) - values
    return out | {
        "advantage/mean": raw_adv[mask].mean().item(),
        "advantage/abs_mean": raw_adv[mask].abs().mean().item(),
        "critic/value_mean": values[mask].mean().item(),
    }


def resident_bytes() -> int | None:
    """This process's resident memory now (None where ``/proc`` is not: not Linux)."""
    try:  # the resident pages are statm's second field
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return None


def memory_metrics() -> dict[str, float]:
    """The trainer process's resident memory now and at its peak so far (with an engine inside
    it, the engine's too), and on CUDA the memory torch holds on this process's GPU now and at
    its peak, in GiB."""
    # Linux reports ru_maxrss in KiB, and updates it lazily: it can lag the current figure.
    out = {"system/peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    rss = resident_bytes()
    if rss is not None:
        out["system/rss_gib"] = rss / 2**30
        out["system/peak_rss_gib"] = max(out["system/peak_rss_gib"], out["system/rss_gib"])
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["system/gpu_mem_gib"] = torch.cuda.memory_allocated() / 2**30
        out["system/gpu_mem_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return out


#: Steps whose mean ``reward/mean`` is held against ``stop_at_reward``.
REWARD_WINDOW = 10


def reward_target_reached(history: list[dict[str, float]], target: float | None) -> str | None:
    """What to print if the last :data:`REWARD_WINDOW` steps' mean reward reached ``target``."""
    rewards = [m["reward/mean"] for m in history[-REWARD_WINDOW:] if "reward/mean" in m]
    if target is None or len(rewards) < REWARD_WINDOW:
        return None
    mean = sum(rewards) / REWARD_WINDOW
    if mean < target:
        return None
    return f"the last {REWARD_WINDOW} steps' mean reward, {mean:.3f}, reached {target}"


def staleness_metrics(batch: TensorDict, version: int, bound: int) -> dict[str, float]:
    """How many policy versions each response is behind the actor that trains on it (``version``:
    its updates so far): ``rollout/staleness_mean`` and ``_max``.

    Raises:
        RuntimeError: if a response is more than ``bound`` versions old (``rollout.max_staleness``),
            which the trainer's order of syncs and rollouts rules out.
    """
    behind = version - batch.get(keys.POLICY_VERSION)
    if int(behind.max()) > bound:
        raise RuntimeError(
            f"a response sampled by policy version {int(batch.get(keys.POLICY_VERSION).min())} would train "
            f"the actor of version {version}: more than rollout.max_staleness = {bound} behind"
        )
    return {
        "rollout/staleness_mean": behind.float().mean().item(),
        "rollout/staleness_max": float(behind.max()),
    }
