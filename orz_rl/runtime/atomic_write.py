"""Files written beside their name and renamed onto it, so that a reader (or the next command)
finds the old file or the new one whole, never half of one, and a failed write leaves nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A path beside ``path`` (``NAME.partial``) for the block to write; renamed onto ``path`` when
    the block ends, removed when it fails or is interrupted."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        yield partial
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> Path:
    """``path.write_text(text)`` (UTF-8), atomically."""
    with replacing(path) as partial:
        partial.write_text(text, encoding="utf-8")
    return Path(path)
