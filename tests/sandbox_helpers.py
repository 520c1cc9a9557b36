"""What the sandbox tests share: the isolations this machine has, and a process census."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from orz_rl.config import SandboxConfig

#: Every isolation that can work here: unshare as root, bubblewrap where installed.
ISOLATIONS = tuple(
    name
    for name, available in (
        ("unshare", os.geteuid() == 0 and shutil.which("unshare")),
        ("bwrap", shutil.which("bwrap")),
    )
    if available
)

_UIDS = range(SandboxConfig.uid_base, SandboxConfig.uid_base + 256)


def sandbox_processes(wait: float = 5.0) -> list[str]:
    """Every process on the machine that a sandbox started (a sandbox uid, or the runner's text),
    after waiting up to ``wait`` seconds for them to go: a sandbox killed at its deadline leaves
    its namespace's first process dead but unreaped for a moment, until init reaps it."""
    deadline = time.monotonic() + wait
    while (found := _census()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def _census() -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            uid = int((proc / "status").read_text().split("\nUid:\t", 1)[1].split()[0])
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue  # it ended while we looked
        if uid in _UIDS or b"orz-sandbox-ready" in cmdline:
            found.append(f"{proc.name} uid={uid} {cmdline[:80]!r}")
    return found
