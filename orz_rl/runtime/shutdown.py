"""Closing a run's parts so that one that fails to close neither stops the others nor hides why
the run ended."""

from __future__ import annotations

import sys
from collections.abc import Callable


def close_all(*closers: Callable[[], object] | None) -> None:
    """Call each closer (a ``None`` is skipped), all of them even when some fail.

    Called from a ``finally`` while an exception ends the run (a checkpoint the full disk refused),
    a closer's failure (the same full disk refusing ``progress.json``) is one line on stderr: raised,
    it would replace the error that says what happened. Otherwise the first failure is raised once
    every closer has run."""
    ending = sys.exc_info()[1] is not None
    first: BaseException | None = None
    for close in closers:
        if close is None:
            continue
        try:
            close()
        except Exception as e:
            if ending:
                print(
                    f"orz-rl: while stopping: {getattr(close, '__qualname__', close)} failed: {e}",
                    file=sys.stderr,
                )
            first = first or e
    if first is not None and not ending:
        raise first
