"""The files a run writes beside its checkpoints, each cut back to the checkpoint's step on resume.

* ``metrics.jsonl``: one JSON object per step (``docs/metrics.md``), mirrored to the trackers of
  ``log.backends`` (:mod:`orz_rl.runtime.trackers`);
* ``prompts.jsonl``: the distinct prompt ids each step trained on;
* ``rollouts.jsonl``: one right and one wrong response of each step with their per-token
  advantages and values (``orz-rl plot``);
* ``config.json``: the run's configuration;
* ``progress.json``: the last step logged, the run's total, the process (pid, host) and whether
  it ended, rewritten at every step (``orz-rl status``).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from tensordict import TensorDict

from orz_rl import keys
from orz_rl.config import LogConfig
from orz_rl.problems.prompts import as_strings
from orz_rl.runtime import atomic_write
from orz_rl.runtime.trackers import Trackers


def jsonable(value: Any) -> Any:
    """``value`` (a configuration as ``asdict`` gives it) with paths as strings and tuples as lists."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return str(value) if isinstance(value, Path) else value


def process_start(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (``/proc/PID/stat``'s 22nd field);
    None where there is no such process or no ``/proc``. With the pid, it names one process: a
    pid the system gave to another process since has another start."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (2nd field) is in parentheses and may hold spaces: count after its end.
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def read_metrics_lines(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The steps of a ``metrics.jsonl`` and how many of its lines could not be read (garbled,
    not an object with an integer ``step``); a torn last line, which a live run may be writing,
    is left out without being counted."""
    rows, unreadable = [], 0
    lines = path.read_text(errors="replace").splitlines()
    for number, line in enumerate(lines, start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append(row)
        elif number < len(lines) and line.strip():
            unreadable += 1
    return rows, unreadable


def rewrite_jsonl(path: Path, rows: list[dict]):
    """``path`` holding exactly ``rows``, opened for appending (line-buffered)."""
    atomic_write.write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
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
    atomic_write.write_text(path, "".join(line + "\n" for line in kept))


def last_logged_step(progress: Path) -> int:
    """The step ``progress`` (a ``progress.json``) says was logged last; 0 without one."""
    try:
        return int(json.loads(progress.read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


class RunLog:
    """A run's log files, rewritten to hold exactly the steps up to ``step`` (a resumed run's
    checkpoint): what a crash logged after the checkpoint goes, so the files read as one run.

    Args:
        run_dir: where the files go.
        step: the last step kept.
        history: the metrics of steps ``1..step``.
        prompt_log: the prompt ids of steps ``1..step``.
        config: the run's configuration (:func:`jsonable`).
        total_steps: the step the run ends at.
        trackers: where metrics go beside ``metrics.jsonl``.
    """

    def __init__(
        self,
        run_dir: Path,
        *,
        step: int,
        history: list[dict],
        prompt_log: list[list[int]],
        config: dict,
        total_steps: int = 0,
        trackers: LogConfig = LogConfig(),
    ) -> None:
        self._metrics = rewrite_jsonl(
            run_dir / "metrics.jsonl", [{"step": i + 1, **m} for i, m in enumerate(history)]
        )
        self._progress, self.total_steps = run_dir / "progress.json", total_steps
        logged = last_logged_step(self._progress)
        self.trackers = Trackers(run_dir, trackers, step=step, logged=max(step, logged), config=config)
        self._samples: list[dict] = []
        self.write_progress(step, ended=False)
        rows = [{"step": i + 1, "prompt_ids": ids} for i, ids in enumerate(prompt_log)]
        self._prompts = rewrite_jsonl(run_dir / "prompts.jsonl", rows)
        self._rollouts = run_dir / "rollouts.jsonl"
        truncate_jsonl(self._rollouts, step)
        atomic_write.write_text(run_dir / "config.json", json.dumps(config, indent=1))

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Step ``step``'s metrics (and the rollout samples :meth:`record_rollout` kept) everywhere."""
        metrics = {k: float(v) for k, v in metrics.items()}
        self._metrics.write(json.dumps({"step": step, **metrics}) + "\n")
        self.trackers.log(step, metrics, self._samples)
        self._samples = []
        self.write_progress(step, ended=False)

    def write_progress(self, step: int, ended: bool) -> None:
        """``progress.json``, replaced whole (a reader never sees half of it)."""
        self.step = step
        state = {"step": step, "total_steps": self.total_steps, "pid": os.getpid()}
        state |= {"host": socket.gethostname(), "updated": time.time(), "ended": ended}
        state["process_start"] = process_start(os.getpid())  # tells this run's pid from a reused one
        atomic_write.write_text(self._progress, json.dumps(state) + "\n")

    def record_rollout(self, step: int, batch: TensorDict, tokenizer) -> list[int]:
        """Log step ``step``'s prompt ids and one right and one wrong response (each token's advantage
        and, with a critic, value; ``null`` without); return the ids."""
        ids = list(dict.fromkeys(batch.get(keys.PROMPT_ID).tolist()))
        self._prompts.write(json.dumps({"step": step, "prompt_ids": ids}) + "\n")
        rewards = keys.score(batch).tolist()
        picks = [rewards.index(r) for r in (1.0, 0.0) if r in rewards]
        mask = batch.get(keys.RESPONSE_MASK)
        prompts = as_strings(batch.get(keys.PROMPT_TEXT))
        values = batch.get(keys.STATE_VALUE, None)  # none without a critic (ppo.advantage)
        with self._rollouts.open("a") as f:
            for i in picks:
                tokens = [tokenizer.decode([t]) for t in batch.get(keys.ACTION)[i][mask[i]].tolist()]
                self._samples.append(
                    {"prompt": prompts[i], "response": "".join(tokens), "reward": rewards[i]}
                )
                row = {
                    "step": step,
                    "prompt": prompts[i],
                    "tokens": tokens,
                    "advantages": batch.get(keys.ADVANTAGE)[i][mask[i]].squeeze(-1).tolist(),
                    "values": None if values is None else values[i][mask[i]].squeeze(-1).tolist(),
                    "reward": rewards[i],
                }
                f.write(json.dumps(row) + "\n")
        return ids

    def close(self) -> None:
        self._metrics.close()
        self.trackers.close()
        self._prompts.close()
        self.write_progress(self.step, ended=True)
