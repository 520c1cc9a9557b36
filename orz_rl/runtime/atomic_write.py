"""Outputs that never destroy what was there: written beside their name and renamed onto it, so
that a reader finds the old file or the new one whole, never half of one, and a failed write
leaves nothing; and never one of the command's own inputs (:func:`refuse_overwrite`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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


def refuse_overwrite(inputs: Iterable[str | Path], **outputs: Path | None) -> None:
    """A ``ValueError`` naming the option where an output of a command (``out=``, ``report=``, ...) is
    one of its inputs, which it would replace; paths are compared resolved, so ``./`` and links
    count. Checked before anything is read or written."""
    given = {Path(p).resolve(): str(p) for p in inputs if Path(p).exists()}
    for option, path in outputs.items():
        if path is not None and Path(path).resolve() in given:
            flag = "--" + option.replace("_", "-")
            raise ValueError(
                f"{flag} {str(path)!r} is the input {given[Path(path).resolve()]!r}, which it would "
                "replace; write the output elsewhere"
            )


def folder_problem(field: str, path: Path, what: str = "") -> str | None:
    """Why ``path`` cannot be made a folder (it, or the nearest of its parents that exists, is a
    file), named by ``field``; None when it can. Asked before any work, not when writing its first
    output."""
    path = Path(path)
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None or existing.is_dir():
        return None
    where = "" if existing == path else f" ({str(existing)!r} on its path)"
    return f"{field} {str(path)!r}{where} is a file, not a directory" + (f" ({what})" if what else "")
