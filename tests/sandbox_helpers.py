"""What the sandbox tests share: the isolations this machine has, and a process census."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from orz_rl.config import SandboxConfig
from orz_rl.rewards.sandbox_server import SERVER_NAME

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
#: A warm slot's standing processes: the launcher (bubblewrap's two, or unshare and its shell) and
#: the server.
_STANDING = {"bwrap", "unshare", "sh", SERVER_NAME.decode()}
#: PID namespaces a slot's processes are in (this one's and the slot's); a program's are in one more.
_SLOT_DEPTH = 2


def sandbox_processes(wait: float = 5.0) -> list[str]:
    """Every process on the machine that a sandbox started for a program (a sandbox uid, or the
    runner's text), after waiting up to ``wait`` seconds for them to go: a sandbox killed at its
    deadline leaves its namespace's first process dead but unreaped for a moment, until init
    reaps it. An open warm sandbox's standing processes (each slot's server and what launched
    it) are not counted: they are in no namespace of a program's own, which a program's
    processes cannot leave."""
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
            status = (proc / "status").read_text()
            uid = int(status.split("\nUid:\t", 1)[1].split()[0])
            depth = len(status.split("\nNSpid:\t", 1)[1].split("\n", 1)[0].split())
            name = status.split("Name:\t", 1)[1].split("\n", 1)[0]
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue  # it ended while we looked
        if depth <= _SLOT_DEPTH and name in _STANDING:
            continue
        if uid in _UIDS or b"orz-sandbox-ready" in cmdline:
            found.append(f"{proc.name} uid={uid} {name} {cmdline[:80]!r}")
    return found
