"""What an evaluation ran on, as ``eval.json`` records it: enough to trace a figure and rerun it.

The record holds the sampling, the windows (``--limit``, ``--since``/``--until``), every
benchmark's file with its item count and sha256, the model's path and a digest of its weights,
and orz-rl's version. ``orz-rl eval --rerun eval.json`` reads it back
(:func:`orz_rl.tools.evaluation.rerun_config`) and refuses to rerun against a file or model that
has changed since.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path

#: The files of a Hugging Face model directory that hold its weights.
WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt")


def sha256_file(path: str | Path) -> str:
    """The sha256 of a file's bytes, read a megabyte at a time."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(model_dir: str | Path) -> str:
    """One sha256 over a model directory's weight files (name and bytes, in name order); the
    config and tokenizer are not weights. Empty where the directory holds none."""
    files = sorted(p for pattern in WEIGHT_PATTERNS for p in Path(model_dir).glob(pattern))
    return _combined([(path, sha256_file(path)) for path in files]) if files else ""


def orz_rl_version() -> str:
    """orz-rl's installed version (``unknown`` where it runs from a folder without an install)."""
    try:
        return metadata.version("orz-rl")
    except metadata.PackageNotFoundError:
        return "unknown"


def benchmark_record(
    path: Path, files: Sequence[Path], items: int, evaluated: Iterable[object], task: str
) -> dict:
    """A benchmark's file or folder, each data file with its sha256, its item count, how many
    were evaluated, one sha256 over its files, and its task."""
    hashes = [(file, sha256_file(file)) for file in files]
    return {
        "path": str(path.resolve()),
        "items": items,
        "evaluated": len(list(evaluated)),
        "sha256": hashes[0][1] if len(hashes) == 1 else _combined(hashes),
        "files": [{"path": str(file.resolve()), "sha256": digest} for file, digest in hashes],
        "task": task,
    }


def _combined(hashes: Sequence[tuple[Path, str]]) -> str:
    """One sha256 over files' names and their own sha256s, in the order given."""
    digest = hashlib.sha256()
    for file, file_digest in hashes:
        digest.update(file.name.encode() + b"\0" + bytes.fromhex(file_digest))
    return digest.hexdigest()


def check_unchanged(record: dict, source: Path) -> None:
    """A ``ValueError`` naming the first benchmark file or model in ``record`` (an ``eval.json``
    at ``source``) that is missing or no longer has the recorded hash."""
    for name, bench in record["benchmarks"].items():
        for file in bench["files"]:
            path = Path(file["path"])
            if not path.is_file():
                raise ValueError(f"{source}: benchmark {name!r}: {str(path)!r} no longer exists")
            if sha256_file(path) != file["sha256"]:
                raise ValueError(
                    f"{source}: benchmark {name!r}: {str(path)!r} changed since (its sha256 differs)"
                )
    model, digest = record["model"], record.get("model_weights_sha256", "")
    if digest and weights_sha256(model) != digest:
        raise ValueError(f"{source}: the weights in {model!r} changed since (their sha256 differs)")
