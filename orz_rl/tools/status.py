"""``orz-rl status RUN_DIR``: where a run stands, from its directory alone.

Reads ``progress.json`` (the last step, the total, the process and whether it ended:
:mod:`orz_rl.runtime.run_log`), ``metrics.jsonl``, ``checkpoints/`` and ``trackers.json`` (the W&B
and MLflow run ids), and prints the state (running, finished, stopped to resume, or ended without
closing), the last step of the total, the means of the last ``window`` steps, the checkpoints, the
tracker runs and, for a running run, the time it needs to the end at the median of its recent steps.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tyro

from orz_rl.runtime.checkpoint import check_checkpoint, checkpoint_dirs
from orz_rl.runtime.run_log import process_start, read_metrics_lines

#: The figures whose recent means are shown, with their labels.
SHOWN = {
    "reward/mean": "reward",
    "response_length/mean": "response tokens",
    "time/step": "s/step",
    "system/peak_rss_gib": "peak RSS GiB",
}


@dataclass(frozen=True)
class StatusConfig:
    """``orz-rl status``: a run's last step, recent means, checkpoints and time to the end."""

    run_dir: tyro.conf.Positional[Path]
    """The run directory (``--run-dir`` of ``orz-rl train``)."""
    window: int = 10
    """Steps the recent means and the time per step are taken over."""


def _alive(progress: dict[str, Any]) -> bool | None:
    """Whether the process that wrote ``progress`` runs; ``None`` when it ran on another host. A
    live process under the same pid that started at another time is another process."""
    if progress.get("host") != socket.gethostname():
        return None
    try:
        pid = int(progress["pid"])
        os.kill(pid, 0)
    except (KeyError, TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:  # it exists, under another user
        pass
    recorded = progress.get("process_start")
    return recorded is None or recorded == process_start(pid)


def read_status(run_dir: Path, window: int = 10) -> dict[str, Any]:
    """The figures :func:`format_status` prints, as a dict."""
    progress_path, metrics_path = run_dir / "progress.json", run_dir / "metrics.jsonl"
    if not metrics_path.is_file() and not progress_path.is_file():
        raise FileNotFoundError(f"{str(run_dir)!r} is not a run directory: no metrics.jsonl or progress.json")
    rows, unreadable = read_metrics_lines(metrics_path) if metrics_path.is_file() else ([], 0)
    try:
        progress = json.loads(progress_path.read_text()) if progress_path.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{progress_path}: not JSON ({e}); orz-rl rewrites it whole at every step") from None
    if not isinstance(progress, dict):
        raise ValueError(
            f"{progress_path}: a JSON {type(progress).__name__}, not the object orz-rl writes "
            "(step, total_steps, pid, host, ended)"
        )
    step = max(progress.get("step", 0), rows[-1]["step"] if rows else 0)
    total = progress.get("total_steps", 0)
    recent = rows[-window:]
    means = {
        label: statistics.fmean(r[key] for r in recent if isinstance(r.get(key), int | float))
        for key, label in SHOWN.items()
        if any(isinstance(r.get(key), int | float) for r in recent)
    }
    alive = _alive(progress) if progress and not progress.get("ended") else False
    # Complete checkpoints only (manifest and sizes; hashing every weight file is resume's job); a
    # broken one (torn, never finished) is listed apart, and a save in progress (step_N.tmp) not at all.
    found = [(p, check_checkpoint(p, digests=False)) for p in checkpoint_dirs(run_dir)]
    saved = [p for p, problem in found if problem is None]
    if not progress:  # a run from before progress.json: only a final checkpoint tells
        state = "finished" if any(p.name == "final" for p in saved) else "unknown (no progress.json)"
    elif progress.get("ended"):
        state = "finished" if total and step >= total else "stopped (run the same command to resume)"
    elif alive is None:
        state = f"running on {progress.get('host')}, or ended there without closing"
    elif alive:
        state = "running"
    else:
        state = "ended without closing (killed or crashed; resume from the last checkpoint)"
    out: dict[str, Any] = {"state": state, "step": step, "total_steps": total, "means": means}
    steps = [r["time/step"] for r in recent if "time/step" in r]
    if alive is not False and not progress.get("ended") and steps and total:
        since = max(0.0, time.time() - progress.get("updated", time.time()))
        out["eta_seconds"] = max(0.0, (total - step) * statistics.median(steps) - since)
    out["checkpoints"] = [p.name for p in sorted(saved, key=lambda p: p.stat().st_mtime)]
    out["broken_checkpoints"] = {p.name: problem for p, problem in found if problem is not None}
    out["unreadable_metrics_lines"] = unreadable
    trackers = run_dir / "trackers.json"  # the W&B and MLflow run ids (orz_rl.runtime.trackers)
    try:
        out["trackers"] = json.loads(trackers.read_text()) if trackers.is_file() else {}
    except json.JSONDecodeError:
        out["trackers"] = {}
    return out


def format_status(run_dir: Path, status: dict[str, Any], window: int) -> str:
    total = f" of {status['total_steps']}" if status["total_steps"] else ""
    lines = [f"{run_dir}: {status['state']}", f"step {status['step']}{total}"]
    if status["means"]:
        figures = ", ".join(f"{label} {value:.3f}" for label, value in status["means"].items())
        lines.append(f"last {window} steps: {figures}")
    if "eta_seconds" in status:
        eta = datetime.timedelta(seconds=round(status["eta_seconds"]))
        lines.append(f"to the end: {eta} at the median of the last {window} steps")
    if status.get("unreadable_metrics_lines"):
        skipped = status["unreadable_metrics_lines"]
        lines.append(f"metrics.jsonl: {skipped} unreadable line(s), left out of the means")
    lines.append(f"checkpoints: {', '.join(status['checkpoints']) or 'none'}")
    for name, problem in status.get("broken_checkpoints", {}).items():
        lines.append(f"broken checkpoint {name}: {problem}")
    if status.get("trackers"):
        lines.append("tracker runs: " + ", ".join(f"{k} {v}" for k, v in status["trackers"].items()))
    return "\n".join(lines)


def run(cfg: StatusConfig) -> dict[str, Any]:
    """``orz-rl status``: print where the run stands; return the figures."""
    if cfg.window < 1:
        raise ValueError(f"--window {cfg.window}: at least 1 step")
    status = read_status(cfg.run_dir, cfg.window)
    print(format_status(cfg.run_dir, status, cfg.window))
    return status
